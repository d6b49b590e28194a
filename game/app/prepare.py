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
from game.puzzles.roles import choose_roles

log = logging.getLogger(__name__)

def build_puzzles(inst: Instance, name: str, *, limit: int | None = None, progress=None) -> int:
    """Run the detector on a volume, store its suspected errors as puzzles, apply the known answers.

    Puzzles with known truth (practice, teach, gold) are rendered now, while
    the segmentation is as they show it; then the edits their truth says are
    right are applied (logged as known answers): the game needs no player to
    make them, and the crowd's puzzles are asked about what remains.
    """
    limit = limit or inst.settings["PUZZLES_PER_VOLUME"]
    candidates = detect.detect_volume(inst, name, limit=limit, progress=progress)
    candidates = choose_roles(candidates, gold_share=inst.settings["GOLD_POOL_SHARE"],
                              teach_share=inst.settings["TEACH_POOL_SHARE"],
                              practice_per_kind=inst.settings["PRACTICE_PER_KIND"])
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
