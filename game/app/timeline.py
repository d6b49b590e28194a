"""A volume over time, for the admin's charts: quality after each edit, votes and agreement per day.

Quality needs ground truth: the adapted Rand error and VI split/merge after
every edit of the log (undo entries included, so a revert shows), beside the
automatic segmentation (no edit) and the supervoxel limit (the best any edit
can reach). Activity needs nothing but the votes.
"""

from __future__ import annotations

from game.app import store as st
from game.app.instance import Instance
from game.evaluation import quality
from game.segmentation.rag import RAG

POINTS = 500  # the curve keeps about this many points however long the log
SERIES = ("adapted_rand_error", "vi_split", "vi_merge")


def has_truth(volume) -> bool:
    return volume.has("groundtruth") and volume.has_side("sv_gt_table") and volume.has_side("mapping")


def quality_over_time(inst: Instance, name: str) -> dict | None:
    """``{edits: [n...], series: {metric: [...]}, automatic: {...}, limit: {...}}``; None without truth.

    Cached per volume and edit count: a chart reload costs nothing until
    the next edit.
    """
    volume = inst.volumes.open(name)
    if not has_truth(volume):
        return None
    agg = inst.agglomeration(name)
    key = (name, len(agg.edits))
    cached = inst.timeline_cache.get(name)
    if cached is not None and cached[0] == key:
        return cached[1]
    table, rag = quality.truth_table(volume), RAG.from_arrays(volume.load_side("rag"))
    rows = quality.history(table, volume.load_side("mapping"), list(agg.edits), rag, points=POINTS)
    report = {"volume": name, "edits": [r["edits"] for r in rows],
              "series": {k: [r[k] for r in rows] for k in SERIES},
              "automatic": {k: rows[0][k] for k in SERIES},
              "current": {k: rows[-1][k] for k in SERIES},
              "limit": {k: v for k, v in quality.supervoxel_limit(table, rag).items() if k in SERIES}}
    inst.timeline_cache[name] = (key, report)
    return report


def activity(inst: Instance, name: str) -> dict:
    """Per day: votes on the volume, and the share of yes/no votes on decided puzzles that agreed."""
    inst.volumes.open(name)
    days = st.daily_votes(inst.store, name)
    return {"volume": name, "days": [d["day"] for d in days], "votes": [d["votes"] for d in days],
            "agreement": [d["agreed"] / d["decided"] if d["decided"] else None for d in days]}
