"""A living pool of puzzles: candidates found again wherever the segmentation changed.

A volume's puzzles are not made once. After every decision the segments it
concerns are scanned again (:meth:`Pool.after_decision`): an applied edit
makes new contacts and new merge trees, whose candidates become puzzles, and
leaves old puzzles that no longer fit (moot, retired as they come up); a
split the crowd rejected opens the next cut of that segment's merge tree. Each
question is asked once: a candidate whose key (what its edit does,
:func:`game.detection.candidates.candidate_key`) is already among a volume's
puzzles is not asked again, across restarts and server processes (a unique
index in the store). A volume keeps at most ``POOL_OPEN`` open crowd
puzzles: past it the new candidates expected to gain most become puzzles and the rest
wait in the pool (per process, in memory), coming in as decisions retire
puzzles; a waiting candidate whose segments an edit changed is dropped (the
rescan of those segments finds what is still to ask). Assignment hands out
the most valuable open puzzles first.

Rescans follow decisions on the server's worker (:meth:`Pool.rescan_later`): a
crowd decides faster than a volume's segments are scanned, so the rescans
that queue up behind one another run as one scan of all their segments
(20 simulated players on the demo made about 1,050 decisions in two minutes;
one rescan per decision ran 393 of them, 37%, before the players had nothing
left and went: the segments the rest concerned, a big false merge's next
cut among them, were never asked about).

First start (:meth:`Pool.prepare_volume`): the candidates with known truth
become practice, teach and gold puzzles, are rendered while the segmentation
is as they show it, and their correct edits are applied as known answers;
then the crowd's pool is filled from the segmentation that is left.
"""

from __future__ import annotations

import collections
import logging
import threading

import numpy as np

from game.app import editlog, images
from game.app import store as st
from game.app.settings import resolve_model_path
from game.crowd import votes
from game.detection import detect
from game.detection.candidates import contact_points
from game.puzzles.edit import Decided, PuzzleEdit, expected_gain, label_edits
from game.puzzles.framing import frame_candidates
from game.puzzles.looking import judgeable
from game.puzzles.roles import choose_roles, sample_strata
from game.puzzles.truth import annotate_truth, fit_for_known_answer, supervoxel_truth
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.rag import RAG

# Scans of a decision's segments tried while edits land during them (each try on the state the last left)
RESCAN_TRIES = 3
log = logging.getLogger(__name__)


class Pool:
    """The candidates and puzzles of an instance's volumes."""

    def __init__(self, inst):
        self.inst = inst
        self._lock = threading.Lock()  # one rescan at a time per process: they read and insert the same rows
        self._waiting: dict[str, list[dict]] = {}  # candidates kept out by POOL_OPEN, best first, per volume
        self._scanned: set[str] = set()  # volumes scanned whole by this process (what waits is known)
        self._pending: dict[str, list[tuple[dict, int | None]]] = {}  # decisions whose rescan has not run
        self._pending_lock = threading.Lock()

    # --- reading what a volume keeps --------------------------------------------------

    def _model_path(self, setting: str):
        path = resolve_model_path(self.inst.settings[setting])
        return path if path.is_file() else None

    def _scan_arrays(self, volume, rag: RAG, scheduler: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Voxels per supervoxel and a point on every RAG edge, counted once per volume and kept beside it
        (the scan as tasks of dask's ``scheduler``)."""
        if volume.has_side("rag_points") and volume.has_side("sv_sizes"):
            return volume.load_side("sv_sizes"), volume.load_side("rag_points")
        sizes, points = contact_points(volume, rag, scheduler=scheduler)
        volume.save_side("sv_sizes", sizes)
        volume.save_side("rag_points", points)
        return sizes, points

    def detect(self, name: str, *, segments=None, gaps=None, skip=(), progress=None, scheduler=None) -> list[dict]:
        """Scored candidates of a volume's live segmentation (or of some of its segments), with ground truth
        labels where the volume has them.

        The score is calibrated on the volume's known answers so far (gold and teach puzzles, expert
        decisions: :func:`game.app.store.known_answers`); before there are any, as trained. Candidates
        whose key is in ``skip`` are left out before they are scored. A volume not scanned yet is scanned
        as tasks of dask's ``scheduler`` (:func:`game.detection.candidates.scan_supervoxels`).
        """
        inst = self.inst
        volume = inst.volumes.open(name)
        agg = inst.agglomeration(name)
        rag = RAG.from_arrays(volume.load_side("rag"))
        sizes, points = self._scan_arrays(volume, rag, scheduler)
        found = detect.detect(volume, agg, rag, model=self._model_path("SCORE_MODEL"),
                              cnn=self._model_path("DETECTOR_MODEL"), known=st.known_answers(inst.store, name),
                              limit=None, skip=skip, progress=progress, sizes=sizes, points=points,
                              segments=segments, gaps=gaps, depth=inst.settings["SPLIT_TREE_DEPTH"],
                              contrast=inst.settings["SPLIT_CUT_CONTRAST"])
        known = supervoxel_truth(volume, agg.n_supervoxels)
        if known is None:
            return found
        sv_truth, labelled = known  # labelled voxels only: the ones a majority is taken over
        return label_edits(found, agg, sv_truth, sizes=labelled)

    def frame(self, name: str, candidates: list[dict], *, progress=None) -> list[dict]:
        """The candidates that can be shown, each with its ``frame``, its ``view`` (the frame as drawn,
        measured as drawn: :func:`game.puzzles.framing.view_frame`), ``judgeable`` and (with ground truth)
        ``truth_objects`` and ``truth_margin``.

        A candidate whose decision cannot be shown inside the volume is
        dropped; one a person may not judge by looking at its view (a sliver,
        an island: :mod:`game.puzzles.looking`) is kept, marked, and handed
        out after the judgeable ones (at half its expected gain in the value
        order: :func:`game.app.store.assignable_puzzles`).
        """
        volume, agg = self.inst.volumes.open(name), self.inst.agglomeration(name)
        framed = []
        for done, (candidate, frame, view) in enumerate(frame_candidates(volume, agg, candidates), 1):
            if frame is not None:
                framed.append({**candidate, "frame": frame.to_dict(), "view": view.to_dict(),
                               "judgeable": judgeable(view)})
            if progress is not None:
                progress(done, len(candidates))
        known = supervoxel_truth(volume, agg.n_supervoxels)
        if known is not None:
            annotate_truth(framed, agg, known)
        return framed

    # --- filling the pool -------------------------------------------------------------

    def refill(self, name: str, *, segments=None, progress=None) -> int:
        """Scan a volume (or some of its segments) and turn new candidates into crowd puzzles; how many.

        Contact and gap merges are all asked; of a segment's tree cuts only
        the first not yet asked (the deepest merges wait for a "no" to the
        shallower), and none while the segment has a split puzzle open. The
        new puzzles' pictures are drawn before this returns (players never
        wait on them), and so are those of open puzzles of ``segments``, whose
        parts the decision that led here may have changed; their ``value``
        (what a right edit gains: the hand-out order) is measured anew.
        """
        bar = progress or (lambda desc: None)
        with self._lock:
            asked = st.puzzle_keys(self.inst.store, name)
            candidates = [] if segments is not None and not segments else \
                self.detect(name, segments=segments, skip=asked, progress=bar("detecting errors"))
            agg = self.inst.agglomeration(name)
            open_cuts = collections.Counter(agg.segment_of(sv) for volume, sv in st.open_split_parts(self.inst.store)
                                          if volume == name)
            cuts = self.inst.settings["SPLIT_OPEN_CUTS"]
            undoes = self.decided(name).contradicted(agg)
            fresh = []
            for c in sorted(candidates, key=lambda c: (c["kind"] != "split", c.get("rank", 0), -c["score"])):
                if c["key"] in asked or undoes(c):
                    continue
                if c["kind"] == "split":
                    if open_cuts[c["segments"][0]] >= cuts:
                        continue
                    open_cuts[c["segments"][0]] += 1
                fresh.append(c)
            fresh = [c for c in self._within_room(name, fresh, agg, asked, open_cuts, cuts, whole=segments is None)
                     if not undoes(c)]  # (what waited was found before the latest edits)
            framed = self.frame(name, fresh, progress=bar("framing puzzles"))
            room = self._room(name)
            while room is not None and len(framed) < room and self._waiting.get(name):
                # some could not be shown: as many of those that waited, best first, take their places
                more, self._waiting[name] = (self._waiting[name][:room - len(framed)],
                                             self._waiting[name][room - len(framed):])
                framed += self.frame(name, [c for c in more if not undoes(c)])
            added = [i for i in st.add_puzzles(self.inst.store, name, framed) if i is not None]
            if segments is None:
                self._scanned.add(name)
                if self.waiting(name) or st.waiting_candidates(self.inst.store, name):
                    st.set_waiting(self.inst.store, name, self.waiting(name))
            changed, values = [], {}
            sizes = self.inst.supervoxel_sizes(name) if segments is not None else None
            for p in st.puzzles(self.inst.store, volume=name, state="open", gold=False):
                if p["id"] in added or segments is not None and \
                        not {agg.segment_of(a) for a in p["anchors"]} & set(segments):
                    continue
                if undoes(p):
                    st.mark_moot(self.inst.store, p["id"])  # an edit since it was made settled it
                elif segments is not None:
                    changed.append(p["id"])
                    values[p["id"]] = PuzzleEdit.of(p).gain(agg, sizes)  # what it gains now: the order's value
            st.set_puzzle_values(self.inst.store, values)
            if self.inst.settings["PRERENDER"]:
                images.prerender(self.inst, added + changed, progress=bar("pictures of the crowd's puzzles"))
            if segments is not None:  # a rescan: the pictures of puzzles it changed stay under old keys
                try:
                    images.prune_if_due(self.inst)
                except Exception:  # the rescan's puzzles are in; old pictures can wait for the next
                    log.exception("removing old puzzle pictures failed")
        return len(added)

    def _within_room(self, name: str, fresh: list[dict], agg, asked: set, open_cuts: collections.Counter,
                     cuts: int, *, whole: bool) -> list[dict]:
        """The new candidates that fit under ``POOL_OPEN`` (waiting ones first when they are better); the rest
        wait. A scan of the whole volume replaces what waited; a scan of some segments adds to it. A waiting
        candidate is dropped once asked, once an edit changed its segments, or (a cut) once its segment has
        ``cuts`` cuts open or new (``open_cuts``: how many each segment has)."""
        waiting = self._waiting.pop(name, [])
        waiting = [] if whole else [c for c in waiting if c["key"] not in asked and _still_fits(c, agg)
                                    and not (c["kind"] == "split" and open_cuts[c["segments"][0]] >= cuts)]
        room = self._room(name)
        if room is None or len(fresh) + len(waiting) <= room:
            return fresh + waiting
        ranked = sorted(fresh + waiting, key=lambda c: -expected_gain(c))
        taken, kept, keys = [], [], set()
        for c in ranked:
            if c["key"] in keys:
                continue
            keys.add(c["key"])
            (taken if len(taken) < room else kept).append(c)
        self._waiting[name] = kept
        return taken

    def _room(self, name: str) -> int | None:
        """How many more open crowd puzzles the volume may have (None: no cap)."""
        cap = self.inst.settings["POOL_OPEN"]
        return max(0, cap - st.open_crowd_puzzles(self.inst.store, name)) if cap else None

    def waiting(self, name: str) -> int:
        """Candidates of a volume kept out of play by ``POOL_OPEN`` (in this process)."""
        return len(self._waiting.get(name, ()))

    def decided(self, name: str) -> Decided:
        """The volume's edits in effect (not undone) as :class:`Decided`: what later questions must not undo."""
        log_rows = st.edits(self.inst.store, name)
        live = editlog.in_effect(editlog.chains(log_rows))
        joined, separated = [], []
        for row in log_rows:
            if row["seq"] not in live:
                continue
            if row["kind"] == "merge":
                joined.append(frozenset(row["edit"]["supervoxels"]))
            elif row["puzzle_id"] is not None:
                puzzle = st.puzzle(self.inst.store, row["puzzle_id"])
                if puzzle is not None and puzzle["kind"] == "split":
                    separated.append((int(puzzle["anchors"][0]), int(puzzle["anchors"][1])))
        return Decided(tuple(joined), tuple(separated))

    def rescan_later(self, name: str, puzzle: dict, edit_seq: int | None) -> None:
        """A puzzle left the open state (``edit_seq``: the edit it applied): its rescan runs on the worker
        (:meth:`game.app.instance.Instance.later`), together with those of every decision made before it runs."""
        with self._pending_lock:
            self._pending.setdefault(name, []).append((puzzle, edit_seq))
        self.inst.later(self._rescan_pending, name)

    def _rescan_pending(self, name: str) -> int:
        """The rescan of every decision of volume ``name`` noted since the last one ran, as one."""
        with self._pending_lock:
            items = self._pending.pop(name, [])
        return self.after_decisions(name, items) if items else 0

    def after_decision(self, name: str, puzzle: dict, edit_seq: int | None) -> int:
        """Scan the segments a decided puzzle concerns again; returns the puzzles added.

        An applied edit: its segments as they are now. A rejected split, or one
        sent to the expert queue: that segment, whose next cut opens (a near tie
        must not end the walk down its merge tree). A rejected merge, or a merge
        sent to the expert queue, changes nothing, but leaves its place to a
        candidate that waited (``POOL_OPEN``).
        """
        return self.after_decisions(name, [(puzzle, edit_seq)])

    def after_decisions(self, name: str, decisions) -> int:
        """:meth:`after_decision` for several ``(puzzle, edit_seq)`` at once: one scan of all their segments."""
        if not self.inst.settings["LIVING_POOL"]:
            return 0
        for attempt in range(RESCAN_TRIES):
            agg = self.inst.agglomeration(name)
            edits = len(agg.edits)
            segments = self._decided_segments(agg, decisions)
            if not segments and not self._waiting.get(name):
                if name in self._scanned or not self._room(name) or not st.waiting_candidates(self.inst.store, name):
                    return 0
                segments = None  # a process that has not scanned the volume (a restart) learns what waits
            try:
                return self.refill(name, segments=segments)
            except Exception:  # a decision is committed already; a failed rescan must not turn it into an error
                if len(self.inst.agglomeration(name).edits) != edits and attempt + 1 < RESCAN_TRIES:
                    continue  # an edit landed during the scan (its segments may be gone): scan the state it left
                log.exception("rescanning volume %r after puzzles %s failed", name, [p["id"] for p, _ in decisions])
                return 0
        return 0

    @staticmethod
    def _decided_segments(agg: Agglomeration, decisions) -> set[int]:
        """The segments that :meth:`after_decision` scans again, in ``agg`` as it is now."""
        segments = set()
        for puzzle, edit_seq in decisions:
            if edit_seq is not None:
                edit = agg.edits[edit_seq] if edit_seq < len(agg.edits) else None
                if edit is not None:
                    segments.add(agg.segment_of(int(edit.supervoxels[0])))
                    if edit.kind == "split":
                        segments.add(agg.segment_of(int(puzzle["anchors"][0])))
            elif puzzle["kind"] == "split":  # retired or sent to the experts (called once it left the open state)
                segments.add(agg.segment_of(int(puzzle["anchors"][0])))
            # a rejected merge changes nothing, but its place may go to a waiting candidate
        return segments

    def prepare_volume(self, name: str, *, progress=None) -> int:
        """First start of a volume: known-truth puzzles, their pictures and known answers, then the crowd's pool."""
        inst = self.inst
        bar = progress or (lambda desc: None)
        candidates = [c for c in self.detect(name, progress=bar("detecting errors")) if c.get("truth") is not None]
        if inst.settings["KNOWN_SAMPLE"]:  # the roles need a few dozen of each: a large volume's thousands wait
            candidates = sample_strata(candidates, inst.settings["KNOWN_SAMPLE"])
        candidates = [c for c in self.frame(name, candidates, progress=bar("framing puzzles"))
                      if fit_for_known_answer(c)]  # measured and taught only on what a person can judge
        choose_roles(candidates, gold_per_kind=inst.settings["GOLD_PER_KIND"],
                     teach_per_kind=inst.settings["TEACH_PER_KIND"],
                     practice_per_kind=inst.settings["PRACTICE_PER_KIND"])
        known = [c for c in candidates if c.get("gold") or c.get("tutorial")]
        ids = st.add_puzzles(inst.store, name, known)
        images.prerender(inst, [i for i in ids if i is not None],
                         progress=bar("pictures of puzzles with known answers"))
        votes.apply_known_answers(inst, name)
        self.refill(name, progress=bar)
        return st.puzzle_count(inst.store, name)


def _still_fits(candidate: dict, agg) -> bool:
    """Whether a waiting candidate's anchors still lie in the segments it was found on (no edit changed them)."""
    return {agg.segment_of(int(a)) for a in candidate["anchors"]} == set(candidate["segments"])
