"""First start: the demo volume, the detector's suspected errors, the puzzles.

Later starts find everything in the instance folder and return at once.
Progress goes to the ``jobs`` table (shown by ``/healthz`` and the landing
page) and, with ``echo``, to the console.
"""

from __future__ import annotations

import logging

from game.app import images, pipeline
from game.app import store as st
from game.app.instance import Instance
from game.crowd import votes
from game.detection import detect
from game.puzzles.framing import frame_candidates
from game.puzzles.looking import judgeable
from game.puzzles.roles import choose_roles
from game.puzzles.truth import annotate_truth, fit_for_known_answer, supervoxel_truth

log = logging.getLogger(__name__)


def frame_puzzles(volume, agg, candidates: list[dict], limit: int, *, progress=None) -> list[dict]:
    """The best ``limit`` candidates that can be shown, each with its ``frame``; those a person can judge first.

    Candidates are framed in rank order until ``limit`` judgeable ones are
    found (:func:`game.puzzles.looking.judgeable`); a candidate whose decision
    cannot be shown inside the volume is dropped, and the ones that are hard
    to judge by looking come after all the others.
    """
    clear, hard = [], []
    for done, (candidate, frame) in enumerate(frame_candidates(volume, agg, candidates), start=1):
        if frame is not None:
            (clear if judgeable(frame) else hard).append({**candidate, "frame": frame.to_dict()})
        if progress is not None:
            progress(done, len(candidates))
        if len(clear) == limit:
            break
    if progress is not None:
        progress(len(candidates), len(candidates))
    return (clear + hard)[:limit]


def build_puzzles(inst: Instance, name: str, *, limit: int | None = None, progress=None) -> int:
    """Run the detector on a volume, store the suspected errors that can be shown as puzzles, apply the known answers.

    Each puzzle keeps its frame (the crop, key slice and decision point its
    pictures show) and, where the volume has ground truth, which object each
    part is and how close a call its truth is; only candidates a person can
    judge by looking, with a clear truth, may become puzzles with a known
    answer (practice, teach, gold). Those are rendered now, while the
    segmentation is as they show it; then the edits their truth says are
    right are applied (logged as known answers): the game needs no player to
    make them, and the crowd's puzzles are asked about what remains.
    """
    limit = limit or inst.settings["PUZZLES_PER_VOLUME"]
    candidates = detect.detect_volume(inst, name, limit=None, progress=progress)
    bar = (progress or (lambda desc: None))("framing puzzles")
    volume, agg = inst.volumes.open(name), inst.agglomeration(name)
    candidates = frame_puzzles(volume, agg, candidates, limit, progress=bar)
    known = supervoxel_truth(volume, agg.n_supervoxels)
    if known is not None:
        annotate_truth(candidates, agg, known)
    choose_roles([c for c in candidates if fit_for_known_answer(c)], gold_share=inst.settings["GOLD_POOL_SHARE"],
                 teach_share=inst.settings["TEACH_POOL_SHARE"], practice_per_kind=inst.settings["PRACTICE_PER_KIND"])
    ids = st.add_puzzles(inst.store, name, candidates)
    known = [i for i, c in zip(ids, candidates) if c.get("gold") or c.get("tutorial")]
    images.prerender(inst, known, progress=(progress or (lambda desc: None))("pictures of puzzles with known answers"))
    votes.apply_known_answers(inst, name)
    return len(candidates)


def prepare(inst: Instance, *, progress=None, echo: bool = False) -> None:
    """Make the instance ready to play; safe to call on every start."""
    say = print if echo else log.info
    bar = progress or (lambda desc: None)
    try:
        st.set_job(inst.store, "prepare", "running", message="checking the instance folder")
        demo = inst.settings["DEMO_NAME"]
        if not inst.volumes.names():
            say(f"first start: generating the demo volume '{demo}' ...")
            st.set_job(inst.store, "prepare", "running", 1, 3, "generating the demo volume")
            pipeline.make_demo(inst, demo, shape=inst.settings["DEMO_SHAPE"], seed=inst.settings["DEMO_SEED"],
                               progress=bar)
        for name in inst.volumes.names():
            volume = inst.volumes.open(name)
            if st.puzzle_count(inst.store, name) == 0 and volume.has_side("mapping"):
                say(f"finding suspected errors in '{name}' and making puzzles ...")
                st.set_job(inst.store, "prepare", "running", 2, 3, f"detecting errors in {name}")
                n = build_puzzles(inst, name, progress=bar)
                say(f"{n} puzzles ready in '{name}'")
            if volume.has_side("mapping") and volume.has("supervoxels"):
                inst.supervoxel_sizes(name)  # ready now, not counted inside the first vote that edits
        st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
        say("ProofQuest is ready.")
    except Exception as exc:  # the server stays up and shows why it is not ready
        log.exception("preparing the instance failed")
        st.set_job(inst.store, "prepare", "failed", message=str(exc))
        say(f"error: preparing the instance failed: {exc}")
