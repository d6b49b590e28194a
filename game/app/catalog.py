"""The volumes of an instance as the admin page lists them, and which of them are live in the game."""

from __future__ import annotations

from game.app import intake
from game.app import store as st
from game.app.instance import Instance
from game.crowd import reports
from game.errors import ProofQuestError


def volumes(inst: Instance) -> list[dict]:
    """Each volume: size, layers, puzzles per state, edits, live flag, its import job and (with truth) quality."""
    counts, live = st.puzzle_counts(inst.store), st.live_volumes(inst.store)
    jobs = {j["name"]: j for j in st.jobs(inst.store)}
    quality = {row["volume"]: row for row in reports.quality_report(inst)}
    rows = []
    for name in inst.volumes.names():
        volume = inst.volumes.open(name)
        shape = list(volume.shape)
        rows.append({"name": name, "shape": shape, "voxels": shape[0] * shape[1] * shape[2],
                     "resolution": list(volume.resolution), "layers": list(volume.layers),
                     "segmented": volume.has_side("mapping"), "puzzles": counts.get(name, {}),
                     "edits": st.edit_count(inst.store, name), "live": live.get(name, True),
                     "job": jobs.get(intake.job_name(name)), "quality": quality.get(name)})
    # imports still running (or failed) have a job but no volume yet
    for job in jobs.values():
        name = job["name"].partition(":")[2]
        if job["name"].startswith("import:") and not inst.volumes.exists(name):
            rows.append({"name": name, "job": job, "pending": True})
    return rows


def set_live(inst: Instance, name: str, live) -> dict:
    """Whether the game hands out puzzles of ``name`` (practice puzzles are not affected)."""
    if not isinstance(live, bool):
        raise ProofQuestError("live is true or false")
    volume = inst.volumes.open(name)
    if live and not volume.has_side("mapping"):
        raise ProofQuestError(f"volume {name!r} has no segmentation yet; it can go live once its import finished")
    st.set_live(inst.store, name, live)
    return {"name": name, "live": live}
