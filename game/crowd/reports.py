"""What players and admins are shown: leaderboards, a player's record, game statistics, quality."""

from __future__ import annotations

import time

from game.app import store as st
from game.crowd import achievements
from game.crowd import scoring as sc
from game.crowd import settled
from game.crowd.votes import teach_answers
from game.errors import ProofQuestError
from game.evaluation import quality
from game.segmentation.rag import RAG

PERIODS = ("all", "week")


def leaderboard(inst, period: str = "all", limit: int = 20, *, class_id: int | None = None) -> list[dict]:
    """The top players all time or this calendar week (from Monday 00:00 UTC); with ``class_id``, that class's
    students (all time)."""
    if period not in PERIODS:
        raise ProofQuestError("period is 'all' or 'week'")
    return st.leaderboard(inst.store, week=st.week_of(time.time()) if period == "week" else None,
                          class_id=class_id, limit=limit)


def player_record(inst, player_id: int) -> dict:
    player = st.player(inst.store, player_id)
    if player is None:
        raise ProofQuestError("unknown player")
    votes = st.player_votes(inst.store, player_id)
    checked = teach_answers(inst, player_id)  # only puzzles whose outcome the player was shown
    earned = achievements.player_achievements(inst.store, player_id)
    edits = [{"puzzle": e["puzzle_id"], "volume": e["volume"], "edit_seq": e["seq"], "kind": e["kind"],
              "fixed": None if e["truth"] is None else bool(e["truth"])} for e in earned["credited_edits"]]
    history, total = [], 0
    for e in st.points_history(inst.store, player_id):
        total += e["points"]
        history.append({"t": e["created"], "points": total})
    recent = [{"puzzle": v["puzzle_id"], "volume": v["volume"], "kind": v["kind"], "answer": v["answer"],
               "time": v["created"]} for v in votes[-10:][::-1]]
    return {"player": player, "votes": len(votes), "checked_answers": len(checked),
            "accuracy": sc.gold_accuracy(checked, inst.scoring), "edits": edits, "points_history": history,
            "contributions": earned["contributions"], "achievements": earned["achievements"], "recent": recent}


def game_stats(inst) -> dict:
    counts = st.puzzle_state_counts(inst.store)
    return {"puzzles": sum(counts.values()), "solved": counts.get("retired", 0) + counts.get("moot", 0),
            "expert": counts.get("expert", 0), "votes": st.vote_count(inst.store),
            "edits": sum(st.edit_count(inst.store, v) for v in inst.volumes.names()),
            "known_edits": st.known_answer_edit_count(inst.store),
            "improvement": quality_improvement(inst), "gold_notes": settled.gold_notes(inst)}


def readiness(inst) -> dict:
    jobs = st.jobs(inst.store)
    # an admin's import runs beside the game: only the first start's preparation holds it back
    ready = st.puzzle_count(inst.store) > 0 and not any(j["state"] == "running" and j["name"] == "prepare"
                                                        for j in jobs)
    return {"ready": ready, "puzzles": st.puzzle_count(inst.store), "jobs": jobs}


def _scored_volumes(inst):
    for name in inst.volumes.names():
        volume = inst.volumes.open(name)
        if volume.has("groundtruth") and volume.has_side("sv_gt_table") and volume.has_side("mapping"):
            yield name, volume


def quality_report(inst) -> list[dict]:
    """Per volume with ground truth: the metrics of the initial and of the current segmentation.

    Cached by the volumes' edit counts: the landing page and every leaderboard
    broadcast ask for it, and it only changes when an edit is applied.
    """
    volumes = list(_scored_volumes(inst))
    key = tuple((name, len(inst.agglomeration(name).edits)) for name, _ in volumes)
    if inst.quality_cache is not None and inst.quality_cache[0] == key:
        return inst.quality_cache[1]
    rows = []
    for name, volume in volumes:
        table, rag = quality.truth_table(volume), RAG.from_arrays(volume.load_side("rag"))
        agg = inst.agglomeration(name)
        rows.append({"volume": name, "edits": len(agg.edits),
                     "initial": quality.evaluate_mapping(table, volume.load_side("mapping"), rag),
                     "current": quality.evaluate_mapping(table, agg.mapping, rag)})
    inst.quality_cache = (key, rows)
    return rows


def quality_improvement(inst) -> list[dict]:
    """Per volume with ground truth, how much the crowd's edits lowered its adapted Rand error.

    Never a sum over volumes: errors of different volumes do not add up to an
    error. ``per_section`` is the number of sections a volume's figures are
    means over (ground truth drawn per section), None for 3D ground truth.
    """
    rows = []
    for r in quality_report(inst):
        initial, current = r["initial"]["adapted_rand_error"], r["current"]["adapted_rand_error"]
        rows.append({"volume": r["volume"], "initial_error": initial, "current_error": current,
                     "percent": 100.0 * (initial - current) / initial if initial else 0.0,
                     "per_section": r["initial"].get("per_section")})
    return rows
