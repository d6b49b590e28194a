"""First start: the demo volume, the detector's suspected errors, the puzzles.

Later starts find everything in the instance folder and return at once.
Progress goes to the ``jobs`` table (shown by ``/healthz`` and the landing
page) and, with ``echo``, to the console.
"""

from __future__ import annotations

import fcntl
import logging

from game.app import images, pipeline
from game.app import store as st
from game.app.instance import Instance

log = logging.getLogger(__name__)

def prepare(inst: Instance, *, progress=None, echo: bool = False) -> None:
    """Make the instance ready to play; safe to call on every start.

    Several server processes over one instance folder prepare one at a time
    (a lock file in the folder): the first makes what is missing, the others
    find it made.
    """
    with open(inst.home / "prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ready = _prepare(inst, progress=progress, echo=echo)
    if ready:  # (outside the lock: another process starting need not wait for it)
        _prune_pictures(inst, print if echo else log.info)


def _prepare(inst: Instance, *, progress=None, echo: bool = False) -> bool:
    """What :func:`prepare` does under its lock; whether the instance is ready."""
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
                n = inst.pool.prepare_volume(name, progress=bar)
                say(f"{n} puzzles ready in '{name}'")
            if volume.has_side("mapping") and volume.has("supervoxels"):
                inst.supervoxel_sizes(name)  # ready now, not counted inside the first vote that edits
        inst.pool  # the detector's modules load now, in the background, not inside the first decision
        st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
        say("ProofQuest is ready.")
    except Exception as exc:  # the server stays up and shows why it is not ready
        log.exception("preparing the instance failed")
        st.set_job(inst.store, "prepare", "failed", message=str(exc))
        say(f"error: preparing the instance failed: {exc}")
        return False
    if inst.settings["PRERENDER"]:
        _draw_missing_pictures(inst, say, bar)
    return True


def _prune_pictures(inst: Instance, say) -> None:
    """Remove the pictures no puzzle shows any more (each edit draws its puzzles anew under new keys); a
    failure is logged, never stops the start."""
    try:
        removed, freed = images.prune(inst)
    except Exception:
        log.exception("removing old puzzle pictures failed")
        return
    if removed:
        say(f"{removed} old pictures' folders removed ({freed / 2**20:.0f} MiB)")


def _draw_missing_pictures(inst: Instance, say, bar) -> None:
    """Draw the pictures of open and known-answer puzzles not cached under their current key (a renderer's new
    version, a cleared cache), once the game is ready, as a job of its own with progress: they waited for each
    one's first request (about 40 ms uncached). A puzzle that fails is logged and skipped."""
    shown = [p["id"] for name in inst.volumes.names() for p in st.puzzles(inst.store, volume=name, tutorial=None)
             if p["state"] == "open" or p["gold"] or p["tutorial"]]
    progress = bar("pictures not drawn yet")
    drawn = 0
    for done, puzzle_id in enumerate(shown, 1):
        try:
            drawn += images.prerender(inst, [puzzle_id])
        except Exception:  # one puzzle's pictures must not stop the others'
            log.exception("drawing the pictures of puzzle %s failed", puzzle_id)
        if done % 50 == 0 or done == len(shown):
            st.set_job(inst.store, "pictures", "running" if done < len(shown) else "done", done, len(shown),
                       "drawing puzzles' pictures")
            if progress is not None:
                progress(done, len(shown))
    if drawn:
        say(f"{drawn} puzzles' pictures drawn")
