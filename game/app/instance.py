"""The instance folder: where one ProofQuest installation keeps its state.

``HOME/proofquest.sqlite`` (players, puzzles, votes, the edit log),
``HOME/volumes/`` (the volume store), ``HOME/cache/`` (rendered images) and
``HOME/secret_key``. The current segmentation of a volume is its initial
mapping (a side array of the volume) with the edit log replayed on top.
"""

from __future__ import annotations

import os
import secrets
import threading
from functools import cached_property
from pathlib import Path

import numpy as np

from game.app import store as st
from game.app.settings import load_settings
from game.segmentation.agglomeration import Agglomeration, Edit
from game.volumes.volume import VolumeStore


class Instance:
    """Paths and shared handles of one instance folder."""

    def __init__(self, home: str | Path | None = None, settings: dict | None = None):
        self.settings = settings if settings is not None else load_settings()
        self.home = Path(home if home is not None else self.settings["HOME"]).resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self._agglomerations: dict[str, Agglomeration] = {}
        self._supervoxel_sizes: dict[str, np.ndarray] = {}
        self._lock = threading.RLock()
        # puzzle id -> {player id: time handed out}, so concurrent players spread over puzzles
        self.assignments: dict[int, dict[int, float]] = {}
        # (edit counts per volume, quality report) — the report changes only with edits
        self.quality_cache: tuple | None = None

    @cached_property
    def volumes(self) -> VolumeStore:
        return VolumeStore(self.home / "volumes")

    @cached_property
    def store(self) -> st.Store:
        return st.Store(self.home / "proofquest.sqlite")

    @property
    def cache_dir(self) -> Path:
        path = self.home / "cache"
        path.mkdir(exist_ok=True)
        return path

    def secret_key(self) -> str:
        """The session-signing key, generated into the instance folder on first use."""
        path = self.home / "secret_key"
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip()

    def agglomeration(self, name: str) -> Agglomeration:
        """The live segmentation of a volume: initial mapping + replayed edit log (cached).

        Re-read when the log holds a different number of edits than memory
        (another process edited, or a transaction was rolled back).
        """
        edits = st.edit_count(self.store, name)  # asked outside the lock: every puzzle request comes here
        with self._lock:
            agg = self._agglomerations.get(name)
            if agg is not None and len(agg.edits) != edits and len(agg.edits) != st.edit_count(self.store, name):
                agg = None  # (asked again under the lock: an edit may have landed in between)
            if agg is None:
                volume = self.volumes.open(name)
                log = [Edit.from_dict(row["edit"]) for row in st.edits(self.store, name)]
                agg = Agglomeration.replay(volume.load_side("mapping"), log)
                self._agglomerations[name] = agg
            return agg

    def supervoxel_sizes(self, name: str) -> np.ndarray:
        """Voxels per supervoxel id of a volume (index 0 counts nothing).

        Counted once per volume, outside the instance lock (it reads the whole
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
        """Drop the cached segmentation of a volume (the edit log changed under it)."""
        with self._lock:
            self._agglomerations.pop(name, None)

    def forget_volume(self, name: str) -> None:
        """Drop everything cached about a volume (after it was replaced)."""
        with self._lock:
            self._agglomerations.pop(name, None)
            self._supervoxel_sizes.pop(name, None)
