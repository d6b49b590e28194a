"""A living pool of puzzles: candidates found again wherever the segmentation changed.

A volume's puzzles are not made once. After every decision the segments it
concerns are scanned again (:meth:`Pool.after_decision`): an applied edit
makes new contacts and new merge trees, whose candidates become puzzles, and
leaves old puzzles that no longer fit (moot, retired as they come up); a
split the crowd rejected opens the next cut of that segment's merge tree. Each
question is asked once: a candidate whose key (what its edit does,
:func:`game.detection.candidates.candidate_key`) is already among a volume's
puzzles is not asked again, across restarts and server processes (a unique
index in the store). There is no cap: every candidate becomes a puzzle, and
assignment hands out the most valuable first.

First start (:meth:`Pool.prepare_volume`): the candidates with known truth
become practice, teach and gold puzzles, are rendered while the segmentation
is as they show it, and their correct edits are applied as known answers;
then the crowd's pool is filled from the segmentation that is left.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from game.app import images
from game.app import store as st
from game.app.settings import resolve_model_path
from game.crowd import votes
from game.detection import detect
from game.detection.candidates import contact_points
from game.puzzles.edit import label_edits
from game.puzzles.framing import frame_candidates
from game.puzzles.looking import judgeable
from game.puzzles.roles import choose_roles
from game.puzzles.truth import annotate_truth, fit_for_known_answer, supervoxel_truth
from game.segmentation.rag import RAG

log = logging.getLogger(__name__)


class Pool:
    """The candidates and puzzles of an instance's volumes."""

    def __init__(self, inst):
        self.inst = inst
        self._lock = threading.Lock()  # one rescan at a time per process: they read and insert the same rows

    # --- reading what a volume keeps --------------------------------------------------

    def _model_path(self, setting: str):
        path = resolve_model_path(self.inst.settings[setting])
        return path if path.is_file() else None

    def _scan_arrays(self, volume, rag: RAG) -> tuple[np.ndarray, np.ndarray]:
        """Voxels per supervoxel and a point on every RAG edge, counted once per volume and kept beside it."""
        if volume.has_side("rag_points") and volume.has_side("sv_sizes"):
            return volume.load_side("sv_sizes"), volume.load_side("rag_points")
        sizes, points = contact_points(volume, rag)
        volume.save_side("sv_sizes", sizes)
        volume.save_side("rag_points", points)
        return sizes, points

    def detect(self, name: str, *, segments=None, gaps=None, progress=None) -> list[dict]:
        """Scored candidates of a volume's live segmentation (or of some of its segments), with ground truth
        labels where the volume has them.

        The score is calibrated on the volume's known answers so far (gold and teach puzzles, expert
        decisions: :func:`game.app.store.known_answers`); before there are any, as trained.
        """
        inst = self.inst
        volume = inst.volumes.open(name)
        agg = inst.agglomeration(name)
        rag = RAG.from_arrays(volume.load_side("rag"))
        sizes, points = self._scan_arrays(volume, rag)
        found = detect.detect(volume, agg, rag, model=self._model_path("SCORE_MODEL"),
                              cnn=self._model_path("DETECTOR_MODEL"), known=st.known_answers(inst.store, name),
                              limit=None, progress=progress, sizes=sizes, points=points, segments=segments,
                              gaps=gaps, depth=inst.settings["SPLIT_TREE_DEPTH"])
        known = supervoxel_truth(volume, agg.n_supervoxels)
        if known is None:
            return found
        sv_truth, labelled = known  # labelled voxels only: the ones a majority is taken over
        return label_edits(found, agg, sv_truth, sizes=labelled)

    def frame(self, name: str, candidates: list[dict], *, progress=None) -> list[dict]:
        """The candidates that can be shown, each with its ``frame``, ``judgeable`` and (with ground truth)
        ``truth_objects`` and ``truth_margin``.

        A candidate whose decision cannot be shown inside the volume is
        dropped; one a person cannot judge by looking (a sliver, an island:
        :mod:`game.puzzles.looking`) is kept, marked, and handed out after all
        the others.
        """
        volume, agg = self.inst.volumes.open(name), self.inst.agglomeration(name)
        framed = []
        for done, (candidate, frame) in enumerate(frame_candidates(volume, agg, candidates), 1):
            if frame is not None:
                framed.append({**candidate, "frame": frame.to_dict(), "judgeable": judgeable(frame)})
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
        parts the decision that led here may have changed.
        """
        bar = progress or (lambda desc: None)
        with self._lock:
            candidates = self.detect(name, segments=segments, progress=bar("detecting errors"))
            asked = st.puzzle_keys(self.inst.store, name)
            agg = self.inst.agglomeration(name)
            walking = {agg.segment_of(sv) for volume, sv in st.open_split_parts(self.inst.store) if volume == name}
            fresh = []
            for c in sorted(candidates, key=lambda c: (c["kind"] != "split", c.get("rank", 0), -c["score"])):
                if c["key"] in asked:
                    continue
                if c["kind"] == "split":
                    if c["segments"][0] in walking:
                        continue
                    walking.add(c["segments"][0])
                fresh.append(c)
            added = [i for i in st.add_puzzles(self.inst.store, name, self.frame(name, fresh,
                                                                                   progress=bar("framing puzzles")))
                     if i is not None]
            changed = [p["id"] for p in st.puzzles(self.inst.store, volume=name, state="open", gold=False)
                       if segments is not None and {agg.segment_of(a) for a in p["anchors"]} & set(segments)
                       and p["id"] not in added]
            if self.inst.settings["PRERENDER"]:
                images.prerender(self.inst, added + changed, progress=bar("pictures of the crowd's puzzles"))
        return len(added)

    def after_decision(self, name: str, puzzle: dict, edit_seq: int | None) -> int:
        """Scan the segments a decided puzzle concerns again; returns the puzzles added.

        An applied edit: its segments as they are now. A rejected split: that
        segment, whose next cut opens. A rejected merge changes nothing.
        """
        if not self.inst.settings["LIVING_POOL"]:
            return 0
        agg = self.inst.agglomeration(name)
        if edit_seq is not None:
            edit = agg.edits[edit_seq] if edit_seq < len(agg.edits) else None
            segments = {agg.segment_of(int(edit.supervoxels[0]))} if edit is not None else set()
            if edit is not None and edit.kind == "split":
                segments.add(agg.segment_of(int(puzzle["anchors"][0])))
        elif puzzle["kind"] == "split":
            segments = {agg.segment_of(int(puzzle["anchors"][0]))}
        else:
            return 0
        try:
            return self.refill(name, segments=segments)
        except Exception:  # a decision is committed already; a failed rescan must not turn it into an error
            log.exception("rescanning volume %r after puzzle %s failed", name, puzzle["id"])
            return 0

    def prepare_volume(self, name: str, *, progress=None) -> int:
        """First start of a volume: known-truth puzzles, their pictures and known answers, then the crowd's pool."""
        inst = self.inst
        bar = progress or (lambda desc: None)
        candidates = [c for c in self.detect(name, progress=bar("detecting errors")) if c.get("truth") is not None]
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
