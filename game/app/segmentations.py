"""The live segmentation of each volume: its initial mapping with the edit log replayed on top.

The edit log in the database is the truth; memory follows it. An edit is
appended to the log inside the caller's write transaction and reaches the
in-memory agglomeration only after that transaction commits
(:meth:`LiveSegmentations.commit_edit`), so a failed write never leaves memory
ahead of the file. Another process's edits are picked up by comparing the
log's length with memory's on every read.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from game.app import store as st
from game.errors import EditConflict
from game.segmentation.agglomeration import Agglomeration, Edit
from game.volumes.volume import VolumeStore

log = logging.getLogger(__name__)


class LiveSegmentations:
    """Per volume: the current :class:`Agglomeration` and the voxels of each supervoxel, cached."""

    def __init__(self, volumes: VolumeStore, store: st.Store):
        self.volumes, self.store = volumes, store
        self._agglomerations: dict[str, Agglomeration] = {}
        self._supervoxel_sizes: dict[str, np.ndarray] = {}
        self._lock = threading.RLock()

    def agglomeration(self, name: str) -> Agglomeration:
        """The live segmentation of a volume (cached; re-read when the log's length differs from memory's)."""
        edits = st.edit_count(self.store, name)  # asked outside the lock: every puzzle request comes here
        with self._lock:
            agg = self._agglomerations.get(name)
            if agg is not None and len(agg.edits) != edits and len(agg.edits) != st.edit_count(self.store, name):
                agg = None  # (asked again under the lock: an edit may have landed in between)
            if agg is None:
                agg = self._replay(name)
                self._agglomerations[name] = agg
            return agg

    def _replay(self, name: str) -> Agglomeration:
        volume = self.volumes.open(name)
        log_rows = st.edits(self.store, name)
        try:
            return Agglomeration.replay(volume.load_side("mapping"), [Edit.from_dict(r["edit"]) for r in log_rows])
        except EditConflict as exc:  # a stored log that does not replay is a broken invariant, not a user error
            raise RuntimeError(f"the edit log of volume {name!r} does not replay on its initial mapping: {exc}") \
                from exc

    def commit_edit(self, name: str, edit: Edit, *, author: str, puzzle_id: int | None = None,
                    provenance: dict | None = None) -> int:
        """Append ``edit`` to the volume's log in the current write transaction; memory follows after COMMIT.

        ``edit`` must be planned on the current state (``Agglomeration.plan_merge``,
        ``plan_split`` or ``PuzzleEdit.plan``) inside the same transaction.
        Returns the edit's sequence number in the log.
        """
        seq = st.append_edit(self.store, name, edit.to_dict(), author=author, puzzle_id=puzzle_id,
                             provenance=provenance)
        self.store.after_commit(lambda: self._advance(name, seq, edit))
        return seq

    def _advance(self, name: str, seq: int, edit: Edit) -> None:
        with self._lock:
            agg = self._agglomerations.get(name)
            if agg is None or len(agg.edits) == seq + 1:
                return  # not cached, or already re-read with this edit
            try:
                if len(agg.edits) != seq:
                    raise EditConflict(f"memory holds {len(agg.edits)} edits, the log {seq + 1}")
                agg.apply(edit)
            except EditConflict:
                log.exception("the in-memory segmentation of %r lost step with its log; re-reading it", name)
                self._agglomerations.pop(name, None)

    def supervoxel_sizes(self, name: str) -> np.ndarray:
        """Voxels per supervoxel id of a volume (index 0 counts nothing).

        Counted once per volume, outside the lock (it reads the whole
        supervoxel layer), and kept beside it as the side array ``sv_sizes``;
        the game loads it when it prepares the puzzles.
        """
        n = len(self.agglomeration(name).mapping)
        sizes = self._supervoxel_sizes.get(name)
        if sizes is None or len(sizes) < n:
            volume = self.volumes.open(name)
            sizes = volume.load_side("sv_sizes") if volume.has_side("sv_sizes") else None
            if sizes is None or len(sizes) < n:
                sizes = volume.label_sizes("supervoxels", minlength=n)
                sizes[0] = 0
                volume.save_side("sv_sizes", sizes)
            with self._lock:
                self._supervoxel_sizes[name] = sizes
        return sizes

    def forget(self, name: str) -> None:
        """Drop the cached segmentation of a volume (re-read from the log on next use)."""
        with self._lock:
            self._agglomerations.pop(name, None)

    def forget_volume(self, name: str) -> None:
        """Drop everything cached about a volume (after it was replaced)."""
        with self._lock:
            self._agglomerations.pop(name, None)
            self._supervoxel_sizes.pop(name, None)
