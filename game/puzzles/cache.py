"""Rendered puzzle slices on disk, made once and served as files, under keys that change with the picture.

A crowd puzzle's overlay colours its two parts as the segmentation has them
now, so its pictures are kept under :func:`picture_key`: the puzzle's id, the
version of the drawing (:data:`game.puzzles.render.RENDERER_VERSION`) and a
digest of the two parts. While the parts and the drawing stay as they are, the
key and the files stay the same (served as immutable); an edit that changes
either part, or a new version of the drawing, gives a new key, drawn afresh.
Puzzles with known truth (practice, teach, secret gold) show the segmentation
as it was when they were made (their correct edits are applied right after):
their key is the id and the version of the drawing.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import threading
import uuid
from pathlib import Path
from typing import Callable

import numpy as np

from game.errors import ProofQuestError
from game.puzzles import render
from game.puzzles.edit import PuzzleEdit

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
# Shared by every cache object because the web layer makes one per request; striped so
# the number of locks stays fixed however many puzzles there are.
_RENDER_LOCKS = tuple(threading.Lock() for _ in range(64))


class PuzzleImageCache:
    """Rendered puzzle slices as files ``<folder>/<key>/<z>_<plain|overlay>.png``.

    A puzzle is rendered on its first request, into a temporary folder that is
    renamed into place: a puzzle's folder is complete or absent, even when
    threads or server processes race. In one process a puzzle is rendered
    once; two processes may both render it, and the first rename wins.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_prefix = str(self.folder.resolve())

    def has(self, key: str) -> bool:
        """Whether the puzzle ``key`` is rendered."""
        return (self.folder / _checked_key(key)).is_dir()

    def path(self, key: str, slice_index: int, overlay: bool) -> Path:
        """Where a slice's PNG lives (whether or not it is rendered yet)."""
        return self.folder / _checked_key(key) / f"{int(slice_index)}_{'overlay' if overlay else 'plain'}.png"

    def get(self, key: str, slice_index: int, overlay: bool, make: Callable[[], list[dict]]) -> Path:
        """The PNG of one slice, calling ``make`` (e.g. :func:`render_slices`) if the puzzle is not rendered.

        Raises
        ------
        ProofQuestError
            If the key is not a plain name, or the puzzle has no such slice.
        """
        path = self.path(key, slice_index, overlay)
        for _ in range(2):  # drawn again if :meth:`prune` took the folder away meanwhile (an undo's old key)
            if not self.has(key):
                with _RENDER_LOCKS[hash((self._lock_prefix, str(key))) % len(_RENDER_LOCKS)]:
                    if not self.has(key):
                        self._install(str(key), make())
            if path.is_file() or self.has(key):
                break
        if not path.is_file():
            count = len(list(path.parent.glob("*_plain.png")))
            raise ProofQuestError(f"puzzle {key} has slices 0..{count - 1}; there is no slice {slice_index}")
        return path

    def prune(self, keep: set[str], older_than: float) -> tuple[int, int]:
        """Remove the folders of pictures no key in ``keep`` names (an edit changed their puzzle's parts, a
        new drawing replaced them) and any leftover staging folder, if last changed before ``older_than``
        (seconds since the epoch: a picture drawn since may belong to an edit another process knows of,
        or be on a player's screen). Returns the folders removed and the bytes they held."""
        removed, freed = 0, 0
        for entry in os.scandir(self.folder):
            name = entry.name
            if name in keep or not entry.is_dir(follow_symlinks=False):
                continue
            if not (name.startswith(".") or _KEY.fullmatch(name)):
                continue  # not the cache's: left alone
            try:
                if entry.stat(follow_symlinks=False).st_mtime >= older_than:
                    continue
                size = sum(f.stat().st_size for f in os.scandir(entry.path) if f.is_file(follow_symlinks=False))
            except FileNotFoundError:
                continue  # removed meanwhile (another process pruning)
            # out of the keys' names at once (a request finds it gone and draws it again), then deleted
            aside = self.folder / f".pruned.{uuid.uuid4().hex}"
            try:
                os.rename(entry.path, aside)
            except FileNotFoundError:
                continue
            shutil.rmtree(aside, ignore_errors=True)
            removed, freed = removed + 1, freed + size
        return removed, freed

    def _install(self, key: str, slices: list[dict]) -> None:
        if not slices:
            raise ValueError(f"rendering puzzle {key} gave no slices")
        # A dot name never collides with a key; mkdir (unlike mkdtemp) keeps the umask's
        # permissions, so a front server running as another user can read the files.
        staging = self.folder / f".{key}.{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            for z, pngs in enumerate(slices):
                for variant in ("plain", "overlay"):
                    (staging / f"{z}_{variant}.png").write_bytes(pngs[variant])
            os.replace(staging, self.folder / key)
        except OSError as exc:
            # Another process installed the same puzzle first; its files are as good as ours.
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not self.has(key):
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _checked_key(key) -> str:
    key = str(key)
    if not _KEY.fullmatch(key):
        raise ProofQuestError(f"puzzle image key {key!r} may hold only letters, digits, '-' and '_'")
    return key


def picture_key(puzzle, agg, secret: bytes = b"") -> str:
    """The cache key of a puzzle's pictures in the segmentation ``agg``.

    ``<id>-r<version>-<digest>``, where the version is
    :data:`game.puzzles.render.RENDERER_VERSION` (pictures drawn by an older
    version are never served) and the digest is of a crowd puzzle's two parts
    in ``agg`` (new pictures when an edit changes them), or of a puzzle with
    known truth's edit (its pictures never change: drawn on the segmentation
    it was made on). One shape for both: players are sent the key, and a
    secret gold puzzle's key without a digest told them which answers were
    being measured. The digest is keyed by ``secret`` (the instance's
    :attr:`~game.app.instance.Instance.picture_secret`): unkeyed, a player
    matched a gold puzzle's key to its edit, found among the supervoxels'
    pairs, before answering it. Raises :class:`game.puzzles.edit.Moot` when a
    crowd puzzle's edit no longer fits.
    """
    drawn = f"{int(puzzle['id'])}-r{render.RENDERER_VERSION}"
    digest = hashlib.blake2b(digest_size=6, key=bytes(secret)[:64])
    if puzzle.get("gold") or puzzle.get("tutorial"):
        edit = PuzzleEdit.of(puzzle)
        digest.update(repr((int(puzzle["id"]), edit.kind, edit.anchors, edit.moved)).encode())
        return f"{drawn}-{digest.hexdigest()}"
    parts = PuzzleEdit.of(puzzle).parts(agg)
    for part in (parts.a, parts.b):
        digest.update(np.sort(np.asarray(part, np.uint64)).tobytes())
        digest.update(b"|")
    return f"{drawn}-{digest.hexdigest()}"
