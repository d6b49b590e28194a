"""The instance folder: where one ProofQuest installation keeps its state.

``HOME/proofquest.sqlite`` (players, puzzles, votes, the edit log),
``HOME/volumes/`` (the volume store), ``HOME/cache/`` (rendered images) and
``HOME/secret_key``. :class:`Instance` is the composition root: it builds the
parts once (settings checked, store, volumes, live segmentations, the table of
puzzles handed out) and hands them to the crowd rules and the web layer.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from functools import cached_property
from pathlib import Path

import numpy as np

from game.app import store as st
from game.app.segmentations import LiveSegmentations
from game.app.settings import load_settings
from game.concurrency import Worker
from game.crowd.assignment import Assignments
from game.crowd.consensus import ConsensusSettings
from game.crowd.scoring import Scoring
from game.errors import ProofQuestError
from game.segmentation.agglomeration import Agglomeration
from game.volumes.volume import VolumeStore


def private_folder(path: Path) -> Path:
    """Make ``path`` (and missing parents) if needed; one this program makes is 0700 whatever the umask."""
    if not path.is_dir():
        path.mkdir(parents=True, mode=0o700)
        path.chmod(0o700)
    return path


def _checked_home(path: Path) -> Path:
    """The instance folder, made (0700) if missing; a clear message when it cannot be one."""
    if path.exists() and not path.is_dir():
        raise ProofQuestError(f"the instance folder {path} is a file; pass --home with a folder")
    try:
        private_folder(path)
    except OSError as exc:
        raise ProofQuestError(f"cannot make the instance folder {path}: {exc.strerror}; pass --home with a "
                              "folder you can write to") from exc
    if not os.access(path, os.W_OK | os.X_OK):
        raise ProofQuestError(f"the instance folder {path} is not writable; pass --home with a folder you can "
                              "write to")
    return path


# How far a player's reliability must move before their open puzzles are decided again (Instance.standing_changed)
RESTANDING_STEP = 0.02


class Instance:
    """Paths and shared parts of one instance folder."""

    def __init__(self, home: str | Path | None = None, settings: dict | None = None):
        self.settings = settings if settings is not None else load_settings()
        self._built: dict[type, tuple[dict, object]] = {}  # class -> (the settings it was built from, instance)
        self.consensus, self.scoring  # checked now: a bad setting stops the start with a message naming it
        self.home = _checked_home(Path(home if home is not None else self.settings["HOME"]).resolve())
        self.assignments = Assignments(secret=lambda: self.picture_secret)
        # (edit counts per volume, quality report): the report changes only with edits
        self.quality_cache: tuple | None = None
        # volume -> ((volume, edit count), quality over time): the admin's chart, recomputed after an edit
        self.timeline_cache: dict[str, tuple] = {}
        # what Neuroglancer viewers ask for again and again (game.app.neuroglancer.ViewerCache), made on first use
        self.viewer_cache = None
        # where work that follows an event without delaying its answer runs (pool rescans, refits): now, in the
        # caller (scripts, tests), or on a background worker thread (the server sets one: game/server.py)
        self.worker: Worker | None = None
        # and one for the checks of shared voices (game.crowd.reliability), which must not wait behind rescans
        self.checker: Worker | None = None
        self.voices_due = 0.0  # time.monotonic() before which no check of shared voices starts
        self.voices_running = threading.Lock()
        self.voices_lock = threading.Lock()  # guards voices_timer, the check asked for too soon
        self.voices_timer: threading.Timer | None = None
        # players whose standing changed since their open puzzles were last decided again
        # (game.crowd.votes.redecide), and what hears of decisions made off any vote (the web layer's broadcaster)
        self._standing_changed: set[int] = set()
        self._noted_reliability: dict[int, float] = {}  # each player's reliability when it last counted
        # open puzzle -> its votes when its voters' standing changed, and when: decided again unless a vote comes
        # (game.crowd.votes.redecide; one pass at a time)
        self.undecided: dict[int, tuple[int, float]] = {}  # (its votes then, when)
        self.redecide_lock = threading.Lock()
        self.redecided_at = -float("inf")  # time.monotonic() of the last pass
        self.redecide_queued = False
        self._standing_lock = threading.Lock()
        self.notify = None
        self.pictures_pruned_at: float | None = None  # time.monotonic() of the last game.app.images.prune

    def standing_changed(self, changes) -> None:
        """Note players whose standing changed enough to decide their open puzzles again.

        ``changes`` maps a player to ``((reliability, established) before, after)``
        (:func:`game.app.store.set_reliabilities`), or to None for a change
        that always counts (a suspension). One counts when whether their votes
        count flipped, or, while they count, when their reliability moved by
        ``RESTANDING_STEP`` since it last counted (a player whose votes count
        neither before nor after changes no decision): each secret gold answer moves it a little, and
        deciding again every puzzle a player voted on after each would cost
        more than the votes themselves.
        """
        with self._standing_lock:
            for player, change in dict(changes).items():
                player = int(player)
                if change is not None:
                    (was, counted_was), (now, counted_now) = change
                    if not counted_was and not counted_now:
                        continue  # their votes counted for nothing, and still do
                    was = self._noted_reliability.setdefault(player, was)
                    if bool(counted_was) == bool(counted_now) and abs((now or 0.5) - (was or 0.5)) < RESTANDING_STEP:
                        continue
                    self._noted_reliability[player] = now
                self._standing_changed.add(player)

    def take_standing_changed(self) -> set[int]:
        """The players noted by :meth:`standing_changed` since the last call, forgetting them."""
        with self._standing_lock:
            taken, self._standing_changed = self._standing_changed, set()
        return taken

    def later(self, function, *args) -> None:
        """Run ``function(*args)`` on the background worker if there is one, else now."""
        if self.worker is None:
            function(*args)
        else:
            self.worker.submit(function, *args)

    @property
    def consensus(self) -> ConsensusSettings:
        """When puzzles retire and how votes count, from the current settings."""
        return self._from_settings(ConsensusSettings)

    @property
    def scoring(self) -> Scoring:
        """How many points what earns, from the current settings."""
        return self._from_settings(Scoring)

    def _from_settings(self, cls):
        """``cls.from_settings(settings)``, built again only when the settings changed since (comparing the
        settings costs a quarter of building: a vote and a puzzle request ask several times)."""
        built = self._built.get(cls)
        if built is None or built[0] != self.settings:
            built = self._built[cls] = (dict(self.settings), cls.from_settings(self.settings))
        return built[1]

    @cached_property
    def volumes(self) -> VolumeStore:
        return VolumeStore(private_folder(self.home / "volumes"))

    @cached_property
    def store(self) -> st.Store:
        store = st.Store(self.home / "proofquest.sqlite")
        # the next puzzle read off an index, not sorted
        st.index_priorities(store, self.consensus.min_votes, self.settings["PUZZLE_ORDER"])
        return store

    @cached_property
    def segmentations(self) -> LiveSegmentations:
        return LiveSegmentations(self.volumes, self.store)

    @cached_property
    def pool(self):
        """The living pool of puzzles (:class:`game.app.pool.Pool`)."""
        from game.app.pool import Pool  # it runs the detector: loaded only by those who make puzzles
        return Pool(self)

    @property
    def cache_dir(self) -> Path:
        return private_folder(self.home / "cache")

    def secret_key(self) -> str:
        """The session-signing key, generated into the instance folder on first use.

        Server processes starting together over a fresh folder agree on one
        key: each writes its own candidate in full, then links it into place
        (atomic; the first link wins), so none reads a half-written key.
        """
        path = self.home / "secret_key"
        if not path.exists():
            candidate = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(fd, 0o600)  # whatever the umask
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_hex(32))
                os.link(candidate, path)
            except FileExistsError:
                pass  # another process's key is in place: that one it is
            finally:
                candidate.unlink()
        return path.read_text().strip()

    @cached_property
    def picture_secret(self) -> bytes:
        """The key of the digests in puzzles' picture keys (:func:`game.puzzles.cache.picture_key`), derived
        from the secret key: players are sent the keys, and an unkeyed digest of a known-answer puzzle's edit
        could be recomputed from the supervoxels a player may see (a gold puzzle found before answering)."""
        return hmac.new(self.secret_key().encode(), b"proofquest picture keys", hashlib.sha256).digest()

    @cached_property
    def ticket_key(self) -> bytes:
        """The key that signs the tickets puzzles are handed out with (derived from the secret key)."""
        return hmac.new(self.secret_key().encode(), b"proofquest assignment tickets", hashlib.sha256).digest()

    # shorthands for the live segmentation, used throughout
    def agglomeration(self, name: str) -> Agglomeration:
        return self.segmentations.agglomeration(name)

    def supervoxel_sizes(self, name: str) -> np.ndarray:
        return self.segmentations.supervoxel_sizes(name)

    def forget(self, name: str) -> None:
        self.segmentations.forget(name)

    def forget_volume(self, name: str) -> None:
        self.segmentations.forget_volume(name)
        self.timeline_cache.pop(name, None)
        self.quality_cache = None
