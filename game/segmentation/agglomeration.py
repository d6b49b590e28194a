"""The segmentation as a supervoxel → segment mapping, edited by merges and splits.

As in FlyWire's ChunkedGraph and Neuroglancer's equivalences, the voxels never
change: an edit moves a set of supervoxels from one segment to another, and is
appended to a log. Undo is a new edit that moves them back; ids are never
reused, so a log replays to the same state anywhere.

Cost of an edit: ``mapping`` is a dense array and a reverse index keeps each
segment's members, so merge, split and undo cost O(supervoxels moved) (plus
O(segment size), amortised, when a segment's members are read); nothing
scans all N supervoxels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from game.errors import EditConflict, ProofQuestError
from game.geometry import BBox
from game.segmentation.rag import id_dtype

KINDS = ("merge", "split", "undo")


def _frozen_ids(values) -> np.ndarray:
    """Supervoxel ids as a read-only uint64 array (shared, not copied, if already one)."""
    if isinstance(values, np.ndarray) and values.dtype == np.uint64 and values.ndim == 1 \
            and not values.flags.writeable:
        return values
    values = np.asarray(values).ravel()
    if len(values) and (not np.issubdtype(values.dtype, np.integer) or values.min() < 0):
        raise ProofQuestError(f"supervoxel ids must be non-negative integers, got {values[:5].tolist()}")
    ids = values.astype(np.uint64)
    ids.flags.writeable = False
    return ids


def _first_occurrences(ids: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Mask keeping one occurrence of each id, in O(len(ids)) (no sort).

    ``scratch`` is any int array indexable by the ids; after writing each
    position at its id, exactly one position per id reads its own index back.
    """
    positions = np.arange(len(ids))
    scratch[ids] = positions
    return scratch[ids] == positions


class _MemberIndex:
    """Segment → member supervoxels, updated in O(supervoxels moved).

    A segment keeps a list of arrays; supervoxels that leave it stay there,
    stale, until its members are read or stale entries outnumber members, when
    the list is compacted to one array (filtered by the mapping, deduplicated).
    """

    def __init__(self, mapping: np.ndarray):
        order = np.argsort(mapping[1:], kind="stable").astype(np.uint64) + np.uint64(1)
        order.flags.writeable = False  # so the per-segment views below are shared, not copied
        ids, starts, sizes = np.unique(mapping[order], return_index=True, return_counts=True)
        self._pieces = {segment: [_frozen_ids(piece)] for segment, piece
                        in zip(ids.tolist(), np.split(order, starts[1:]))}
        self._size = dict(zip(ids.tolist(), sizes.tolist()))
        self._entries = dict(self._size)

    def __contains__(self, segment: int) -> bool:
        return segment in self._size

    def __len__(self) -> int:
        return len(self._size)

    def ids(self) -> list[int]:
        return list(self._size)

    def size(self, segment: int) -> int:
        return self._size[segment]

    def read(self, segment: int, mapping: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        pieces = self._pieces[segment]
        if self._entries[segment] != self._size[segment] or len(pieces) > 1:
            members = np.concatenate(pieces)
            members = members[mapping[members] == segment]
            members = _frozen_ids(members[_first_occurrences(members, scratch)])
            self._pieces[segment], self._entries[segment] = [members], len(members)
        return self._pieces[segment][0]

    def move(self, supervoxels: np.ndarray, source: int, target: int,
             mapping: np.ndarray, scratch: np.ndarray) -> None:
        """Record a move that ``mapping`` already shows."""
        moved = len(supervoxels)
        self._size[source] -= moved
        if self._size[source] == 0:
            del self._size[source], self._pieces[source], self._entries[source]
        elif self._entries[source] > 2 * self._size[source] + 64:
            self.read(source, mapping, scratch)
        self._pieces.setdefault(target, []).append(supervoxels)
        self._size[target] = self._size.get(target, 0) + moved
        self._entries[target] = self._entries.get(target, 0) + moved


@dataclass(frozen=True, eq=False)
class Edit:
    """One change of the mapping: ``supervoxels`` left ``source`` and joined ``target``.

    Attributes
    ----------
    kind : {'merge', 'split', 'undo'}
    supervoxels : ndarray of uint64, read-only
        The supervoxels moved (for a merge, every member of ``source``).
    source, target : int
        Segment left and segment joined.
    undoes : int or None
        For an undo, the log index of the edit it reverses.
    """

    kind: str
    supervoxels: np.ndarray
    source: int
    target: int
    undoes: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ProofQuestError(f"unknown edit kind {self.kind!r}; use one of {', '.join(KINDS)}")
        object.__setattr__(self, "supervoxels", _frozen_ids(self.supervoxels))
        object.__setattr__(self, "source", int(self.source))
        object.__setattr__(self, "target", int(self.target))
        if (self.kind == "undo") != (self.undoes is not None):
            raise ProofQuestError("an 'undo' edit, and only an undo, names the edit it undoes")
        if self.undoes is not None:
            object.__setattr__(self, "undoes", int(self.undoes))

    def __eq__(self, other) -> bool:
        if not isinstance(other, Edit):
            return NotImplemented
        return ((self.kind, self.source, self.target, self.undoes)
                == (other.kind, other.source, other.target, other.undoes)
                and np.array_equal(self.supervoxels, other.supervoxels))

    def __hash__(self) -> int:
        return hash((self.kind, self.source, self.target, self.undoes, self.supervoxels.tobytes()))

    def inverse(self, index: int) -> "Edit":
        """The undo of this edit, which sits at ``index`` in the log."""
        return Edit("undo", self.supervoxels, self.target, self.source, undoes=index)

    def to_dict(self) -> dict:
        """JSON-safe form."""
        return {"kind": self.kind, "supervoxels": self.supervoxels.tolist(),
                "source": self.source, "target": self.target, "undoes": self.undoes}

    @classmethod
    def from_dict(cls, data: dict) -> "Edit":
        return cls(data["kind"], data["supervoxels"], data["source"], data["target"],
                   data.get("undoes"))


@dataclass(frozen=True)
class _Trace:
    """What an applied edit changed in the per-supervoxel "last edit" record.

    ``last_edit[sv]`` is the log index of the live edit that last moved
    ``sv`` (−1: none). ``stamp`` is what this edit wrote there and ``before``
    what it overwrote; undoing the edit writes ``before`` back, so an edit that
    was undone stops counting as having touched its supervoxels.
    """

    before: np.ndarray
    stamp: np.ndarray
    emptied_source: bool


class Agglomeration:
    """The segmentation: a supervoxel → segment mapping with its edit log.

    Parameters
    ----------
    mapping : array_like of int
        ``mapping[sv]`` is the segment of supervoxel ``sv``; ``mapping[0] == 0``
        and every other supervoxel belongs to a positive segment.
    """

    def __init__(self, mapping: np.ndarray):
        mapping = np.asarray(mapping)
        if mapping.ndim != 1 or len(mapping) == 0 or mapping[0] != 0:
            raise ProofQuestError("a mapping is a 1-D array indexed by supervoxel id with mapping[0] == 0")
        if not np.issubdtype(mapping.dtype, np.integer) or (mapping[1:] <= 0).any():
            raise ProofQuestError("every supervoxel must map to a positive integer segment id")
        self._next_id = int(mapping.max()) + 1
        self._mapping = mapping.astype(id_dtype(self._next_id))
        self._members = _MemberIndex(self._mapping)
        self._scratch = np.zeros(len(mapping), np.intp)
        self._last_edit = np.full(len(mapping), -1, np.int64)
        self._traces: list[_Trace] = []
        self._undone_by: dict[int, int] = {}
        self.edits: list[Edit] = []

    @classmethod
    def replay(cls, mapping: np.ndarray, edits: Iterable[Edit]) -> "Agglomeration":
        """The state reached by applying a stored log to the initial mapping."""
        agglomeration = cls(mapping)
        for edit in edits:
            agglomeration.apply(edit)
        return agglomeration

    # --- queries -------------------------------------------------------------------

    @property
    def mapping(self) -> np.ndarray:
        """Read-only live view of the supervoxel → segment array (copy it for a snapshot)."""
        view = self._mapping.view()
        view.flags.writeable = False
        return view

    @property
    def next_id(self) -> int:
        """The id the next split will get: one more than any id ever used."""
        return self._next_id

    @property
    def n_supervoxels(self) -> int:
        return len(self._mapping) - 1

    @property
    def n_segments(self) -> int:
        return len(self._members)

    def segments(self) -> np.ndarray:
        """The current segment ids, sorted."""
        return np.array(sorted(self._members.ids()), dtype=np.uint64)

    def segment_of(self, supervoxel: int) -> int:
        if not 0 < int(supervoxel) <= self.n_supervoxels:
            raise ProofQuestError(f"supervoxel {supervoxel} does not exist (ids are 1..{self.n_supervoxels})")
        return int(self._mapping[int(supervoxel)])

    def members(self, segment: int) -> np.ndarray:
        """The supervoxels of ``segment`` (read-only, in no particular order)."""
        return self._members.read(self._existing(segment), self._mapping, self._scratch)

    def size(self, segment: int) -> int:
        """Number of supervoxels in ``segment``."""
        return self._members.size(self._existing(segment))

    def _existing(self, segment: int) -> int:
        if int(segment) not in self._members:
            raise ProofQuestError(f"segment {segment} does not exist now")
        return int(segment)

    # --- edits ---------------------------------------------------------------------

    def plan_merge(self, a: int, b: int) -> Edit:
        """The edit that joins segments ``a`` and ``b``, checked against the current state, not applied.

        The smaller one's supervoxels move into the larger; on equal sizes
        ``a`` keeps its id. Planning first lets a caller commit the edit to a
        log before memory changes (:meth:`apply` it after the commit).
        """
        a, b = int(a), int(b)
        if a == b:
            raise ProofQuestError(f"cannot merge segment {a} with itself")
        small, large = (a, b) if self.size(a) < self.size(b) else (b, a)
        edit = Edit("merge", self.members(small), small, large)
        self._check(edit)
        return edit

    def plan_split(self, segment: int, supervoxels: Sequence[int]) -> Edit:
        """The edit that moves ``supervoxels`` (some, not all, of ``segment``) to a new segment; not applied."""
        edit = Edit("split", np.unique(_frozen_ids(supervoxels)), segment, self.next_id)
        self._check(edit)
        return edit

    def merge(self, a: int, b: int) -> Edit:
        """Join segments ``a`` and ``b`` (:meth:`plan_merge`, then :meth:`apply`)."""
        return self.apply(self.plan_merge(a, b))

    def split(self, segment: int, supervoxels: Sequence[int]) -> Edit:
        """Move ``supervoxels`` (some, not all, of ``segment``) to a new segment."""
        return self.apply(self.plan_split(segment, supervoxels))

    def plan_undo(self, index: int) -> Edit:
        """The edit that moves edit ``index``'s supervoxels back (undoing an undo redoes); not applied.

        Refused (:class:`EditConflict`) when the edit is already undone, when a
        later edit that is still in effect moved any of the same supervoxels
        (the message names it: undo that one first), or when the segment they
        would return to has since been merged away.
        """
        if not 0 <= index < len(self.edits):
            raise EditConflict(f"there is no edit #{index} (the log has {len(self.edits)})")
        edit = self.edits[index].inverse(index)
        self._check(edit)
        return edit

    def undo(self, index: int) -> Edit:
        """Append the undo of edit ``index`` (:meth:`plan_undo`, then :meth:`apply`)."""
        return self.apply(self.plan_undo(index))

    def apply(self, edit: Edit) -> Edit:
        """Apply ``edit`` after checking it fits the current state, and log it.

        The check that every moved supervoxel is in ``edit.source`` means an
        edit is never applied twice.
        """
        emptied_source = self._check(edit)
        svs = edit.supervoxels
        if edit.target >= self._next_id:
            self._next_id = edit.target + 1
            if self._mapping.dtype != id_dtype(self._next_id):
                self._mapping = self._mapping.astype(id_dtype(self._next_id))
        self._mapping[svs] = edit.target
        self._members.move(svs, edit.source, edit.target, self._mapping, self._scratch)
        index = len(self.edits)
        if edit.undoes is None:
            stamp = np.full(len(svs), index, np.int64)
        else:
            self._undone_by[edit.undoes] = index
            stamp = self._traces[edit.undoes].before
        self._traces.append(_Trace(self._last_edit[svs], stamp, emptied_source))
        self._last_edit[svs] = stamp
        self.edits.append(edit)
        return edit

    def _check(self, edit: Edit) -> bool:
        """Raise if ``edit`` does not fit the current state; return whether it empties its source."""
        svs = edit.supervoxels
        if len(svs) == 0:
            raise EditConflict("an edit must move at least one supervoxel")
        if svs.max() > self.n_supervoxels or svs.min() == 0:
            raise EditConflict(f"supervoxel ids must be in 1..{self.n_supervoxels}")
        if not _first_occurrences(svs, self._scratch).all():
            raise EditConflict("an edit lists each supervoxel once")
        if edit.source == edit.target:
            raise EditConflict(f"an edit must move supervoxels to another segment, not back into {edit.source}")
        if edit.kind == "undo":
            self._check_undo(edit)
        outside = svs[self._mapping[svs] != edit.source]
        if len(outside):
            raise EditConflict(
                f"supervoxel {outside[0]} is in segment {self._mapping[outside[0]]}, not {edit.source}: "
                "the edit does not fit the current state (an edit is never applied twice)")
        emptied = len(svs) == self.size(edit.source)
        if edit.kind == "merge":
            if not emptied:
                raise EditConflict(f"a merge moves all of segment {edit.source}")
            self._existing(edit.target)
        elif edit.kind == "split":
            if emptied:
                raise EditConflict(f"a split must leave some supervoxels in segment {edit.source}")
            if edit.target < self.next_id:
                raise EditConflict(f"a split needs a fresh segment id (>= {self.next_id}), got {edit.target}")
        return emptied

    def _check_undo(self, edit: Edit) -> None:
        index = edit.undoes
        if not 0 <= index < len(self.edits):
            raise EditConflict(f"there is no edit #{index} to undo")
        if index in self._undone_by:
            raise EditConflict(f"edit #{index} is already undone (by edit #{self._undone_by[index]})")
        if edit != self.edits[index].inverse(index):
            raise EditConflict(f"this undo does not reverse edit #{index}")
        trace = self._traces[index]
        moved = self._last_edit[edit.supervoxels] != trace.stamp
        if moved.any():
            sv = int(edit.supervoxels[moved][0])
            raise EditConflict(
                f"cannot undo edit #{index}: supervoxel {sv} was moved again by edit "
                f"#{self._last_edit[sv]}; undo that edit first")
        if edit.target not in self._members and not trace.emptied_source:
            raise EditConflict(
                f"cannot undo edit #{index}: segment {edit.target} has since been merged away; "
                f"merge segment {edit.source} with its successor instead")

    # --- materialisation -----------------------------------------------------------

    def materialize(self, supervoxels: np.ndarray) -> np.ndarray:
        """Segment labels of a supervoxel block: ``mapping[supervoxels]``."""
        return np.take(self._mapping, supervoxels)

    def materialize_blocks(self, read_supervoxels: Callable[[BBox], np.ndarray],
                           shape: Sequence[int], chunks: Sequence[int], *,
                           bbox: BBox | None = None) -> Iterator[tuple[BBox, np.ndarray]]:
        """Yield ``(bbox, labels)`` for each chunk of ``bbox`` (default: the whole volume)."""
        region = BBox.from_shape(shape) if bbox is None else bbox.clip(shape)
        for tile in region.tiles(chunks):
            yield tile, self.materialize(read_supervoxels(tile))

    def materialize_volume(self, volume, bbox: BBox | None = None) -> Iterator[tuple[BBox, np.ndarray]]:
        """:meth:`materialize_blocks` over a ``Volume``'s supervoxel layer, in its chunks."""
        return self.materialize_blocks(lambda box: volume.read("supervoxels", box),
                                       volume.shape, volume.chunks, bbox=bbox)
