"""What a class did: the live ranking of a round, the projector board, and the report after it.

The report follows what teachers get from Kahoot! (each student's score and a
breakdown per question, as CSV) and from Zooniverse Classrooms (each student's
work), plus what proofreading adds: accuracy on puzzles whose answer is shown
(teach puzzles; secret gold answers are never reported, see game.crowd.reliability), the two kinds of
mistake (seeing one neurite where there are two, and two where there is one),
a learning curve, and the edits the class's answers helped decide.
"""

from __future__ import annotations

import csv
import io
import statistics
import time
from datetime import datetime, timezone

from game.app import store as st
from game.crowd import achievements as ach
from game.crowd import classes
from game.puzzles.edit import correct_answer, question_for

CURVE_BIN = 5  # gold answers per point of the learning curve


def _rank_key(row: dict) -> tuple:
    """The tie-break of every board (as in ``store.leaderboard``): points, then who reached them first."""
    return (-row["points"], row["reached"] if row["reached"] is not None else float("inf"), row["player_id"])


def ranking(store: st.Store, class_id: int, start: float, until: float) -> list[dict]:
    """The class's students (not removed) ranked by points earned in [start, until], with answers given
    and accuracy on gold puzzles in that time."""
    points = st.class_points(store, class_id, start, until)
    answered: dict[int, list[dict]] = {}
    for vote in st.class_votes(store, class_id, start, until):
        answered.setdefault(vote["player_id"], []).append(vote)
    rows = []
    for m in st.members(store, class_id):
        votes = answered.get(m["player_id"], [])
        gold = [ach.is_right(v) for v in votes if v["teach"] and v["supports_edit"] is not None]
        scored = points.get(m["player_id"], {})
        rows.append({"player_id": m["player_id"], "nickname": m["nickname"], "points": scored.get("points") or 0,
                     "reached": scored.get("reached"), "answered": len(votes), "gold_answers": len(gold),
                     "gold_right": sum(gold), "gold_accuracy": sum(gold) / len(gold) if gold else None})
    rows.sort(key=_rank_key)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def round_view(row: dict | None, now: float) -> dict | None:
    if row is None:
        return None
    running = classes.is_running(row, now)
    start, until = classes.window(row, now)
    return {"id": row["id"], "puzzle_set": row["puzzle_set"], "seconds": row["seconds"],
            "state": "running" if running else "ended", "started": row["started"],
            "remaining": max(0.0, row["ends"] - now) if running else 0.0, "duration": until - start}


def round_achievements(store: st.Store, class_id: int, start: float, until: float) -> list[dict]:
    """Achievements the class's students earned in [start, until]: {nickname, title, text}."""
    out = []
    for m in st.members(store, class_id):
        earned = ach.earned(st.player_votes(store, m["player_id"]), st.credited_edits(store, m["player_id"]))
        out += [{"nickname": m["nickname"], "title": a["title"], "text": a["text"], "at": a["at"]}
                for a in earned if start <= a["at"] <= until]
    return sorted(out, key=lambda a: a["at"])


def board(store: st.Store, class_id: int, *, now: float | None = None) -> dict:
    """Everything the projector board shows, as one message: the join code while waiting, the live
    ranking and countdown during a round, the podium, contribution and achievements after it."""
    now = now or time.time()
    cls = st.class_(store, class_id)
    code = st.current_join_code(store, class_id)
    latest = round_view(st.latest_round(store, class_id), now)
    out = {"class": {"id": cls["id"], "name": cls["name"]}, "joined": cls["students"],
           "code": code["code"] if classes.code_state(code, now) == "open" else None,
           "round": latest, "ranking": [], "podium": [], "achievements": [],
           "contribution": {"round": 0, "total": st.class_edit_count(store, class_id)}}
    if latest is not None:
        start, until = latest["started"], latest["started"] + latest["duration"]
        rows = ranking(store, class_id, start, until)
        out["ranking"] = [_public(r) for r in rows]  # all of them: each student finds their own rank
        out["contribution"]["round"] = st.class_edit_count(store, class_id, start, until)
        if latest["state"] == "ended":
            out["podium"] = [_public(r) for r in rows[:3] if r["answered"]]
            out["achievements"] = [{k: a[k] for k in ("nickname", "title", "text")}
                                   for a in round_achievements(store, class_id, start, until)]
    return out


def _public(row: dict) -> dict:
    return {k: row[k] for k in ("rank", "player_id", "nickname", "points", "answered", "gold_answers",
                                "gold_accuracy")}


# ----------------------------------------------------------------------------- the report after a round

def mistake(vote: dict) -> str | None:
    """A wrong yes/no answer as the student saw it: 'joined' (one neurite seen where there are two) or
    'split' (two seen where there is one); None for a right, unsure or not yet known answer."""
    truth = ach.known_truth(vote)
    if ach.is_right(vote) is not False:
        return None
    return "joined" if correct_answer(vote["kind"], truth) == "no" else "split"


def _basis(vote: dict) -> str | None:
    if vote["teach"]:
        return "known answer"
    return "consensus" if ach.known_truth(vote) is not None else None


def learning_curve(gold: list[bool]) -> list[float]:
    """Share right in consecutive bins of :data:`CURVE_BIN` gold answers (the last bin may be smaller)."""
    return [sum(gold[i:i + CURVE_BIN]) / len(gold[i:i + CURVE_BIN]) for i in range(0, len(gold), CURVE_BIN)]


def report(store: st.Store, class_id: int, round_id: int) -> dict:
    """A round's report: per student, per puzzle, the class's learning curve and contribution."""
    row = classes.round_of(store, class_id, round_id)
    start, until = classes.window(row)
    votes = st.class_votes(store, class_id, start, until)
    ranks = {r["player_id"]: r for r in ranking(store, class_id, start, until)}
    by_student: dict[int, list[dict]] = {}
    for v in votes:
        by_student.setdefault(v["player_id"], []).append(v)
    students = []
    for m in st.members(store, class_id, removed=True):
        mine = by_student.get(m["player_id"], [])
        if m["removed"] is not None and not mine:
            continue
        gold = [ach.is_right(v) for v in mine if v["teach"] and v["supports_edit"] is not None]
        ms = [v["ms"] for v in mine if v["ms"] is not None]
        mistakes = [mistake(v) for v in mine]
        ranked = ranks.get(m["player_id"], {})
        students.append({
            "player_id": m["player_id"], "nickname": m["nickname"], "removed": m["removed"] is not None,
            "rank": ranked.get("rank"), "points": ranked.get("points", sum(v["points"] for v in mine)),
            "answers": len(mine), **{a: sum(v["answer"] == a for v in mine) for a in ("yes", "no", "unsure")},
            "gold_answers": len(gold), "gold_right": sum(gold),
            "gold_accuracy": sum(gold) / len(gold) if gold else None,
            "median_ms": statistics.median(ms) if ms else None,
            "joined": mistakes.count("joined"), "split": mistakes.count("split"),
            "curve": learning_curve(gold)})
    students.sort(key=lambda s: (s["rank"] is None, s["rank"] or 0, s["nickname"].lower()))
    puzzles: dict[int, dict] = {}
    for v in votes:
        p = puzzles.setdefault(v["puzzle_id"], {
            "puzzle": v["puzzle_id"], "kind": v["kind"], "question": question_for(v["kind"]),
            "known": bool(v["teach"]), "state": v["state"],
            "edited": v["edit_seq"] is not None, "right_answer": _right_answer(v),
            "yes": 0, "no": 0, "unsure": 0, "right": 0, "wrong": 0})
        p[v["answer"]] += 1
        right = ach.is_right(v)
        if right is not None:
            p["right" if right else "wrong"] += 1
    class_gold: dict[int, list[bool]] = {}
    for v in votes:
        if v["teach"] and v["supports_edit"] is not None:
            class_gold.setdefault(v["player_id"], []).append(ach.is_right(v))
    bins = max((len(g) for g in class_gold.values()), default=0)
    curve = []
    for i in range(0, bins, CURVE_BIN):
        answers = [ok for g in class_gold.values() for ok in g[i:i + CURVE_BIN]]
        curve.append({"from": i + 1, "to": i + CURVE_BIN, "answers": len(answers),
                      "accuracy": sum(answers) / len(answers)})
    return {"round": {**row, "start": start, "until": until, "running": classes.is_running(row)},
            "students": students, "puzzles": sorted(puzzles.values(), key=lambda p: p["puzzle"]),
            "curve": curve, "answers": len(votes),
            "contribution": st.class_edit_count(store, class_id, start, until),
            "achievements": round_achievements(store, class_id, start, until)}


def _right_answer(vote: dict) -> str | None:
    truth = ach.known_truth(vote)
    return None if truth is None else correct_answer(vote["kind"], truth)


STUDENT_COLUMNS = ("nickname", "removed", "rank", "points", "answers", "yes", "no", "unsure", "gold_answers",
                   "gold_right", "gold_accuracy", "median_ms", "joined", "split")
# 'known': a teach puzzle, whose answer the student was shown; a secret gold puzzle is reported as any crowd
# puzzle (flagged as gold, it told the teacher which answers measure players, and a student's CSV could too)
ANSWER_COLUMNS = ("time", "nickname", "puzzle", "kind", "known", "answer", "right_answer", "right", "basis", "ms",
                  "points")


def students_csv(store: st.Store, class_id: int, round_id: int) -> str:
    """One row per student: the columns of :data:`STUDENT_COLUMNS` ('joined' and 'split' count the two
    kinds of mistake)."""
    rows = report(store, class_id, round_id)["students"]
    return _csv(STUDENT_COLUMNS, ({**s, "removed": int(s["removed"])} for s in rows))


def answers_csv(store: st.Store, class_id: int, round_id: int) -> str:
    """One row per answer of the round, oldest first: the columns of :data:`ANSWER_COLUMNS`."""
    votes = st.class_votes(store, class_id, *classes.window(classes.round_of(store, class_id, round_id)))
    return _csv(ANSWER_COLUMNS, ({
        "time": datetime.fromtimestamp(v["created"], timezone.utc).isoformat(timespec="milliseconds"),
        "nickname": v["nickname"], "puzzle": v["puzzle_id"], "kind": v["kind"], "known": v["teach"],
        "answer": v["answer"], "right_answer": _right_answer(v),
        "right": None if ach.is_right(v) is None else int(ach.is_right(v)), "basis": _basis(v), "ms": v["ms"],
        "points": v["points"]} for v in votes))


def _csv(columns, rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else _cell(r[k]) for k in columns})
    return out.getvalue()


def _cell(value):
    """Spreadsheets run a cell that starts with =, +, - or @ as a formula: nicknames are quoted."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value
