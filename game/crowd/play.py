"""The game's rules: which puzzle a player gets, what a vote does, what it earns.

One vote, end to end (see DESIGN.md): :func:`cast_vote` records the vote,
updates the puzzle's consensus and — when the puzzle retires — applies its
edit to the segmentation and the edit log, all in one transaction of the
store's single writer. The caller acknowledges only after it returns.
No Flask here: the web layer calls these functions.
"""

from __future__ import annotations

import functools
import random
import time
from pathlib import Path

import numpy as np

from game.app import pipeline
from game.app import store as st
from game.app.instance import Instance
from game.crowd import consensus as cs
from game.errors import ProofQuestError
from game.evaluation import quality
from game.puzzles import render as pz
from game.segmentation.agglomeration import Agglomeration, Edit
from game.segmentation.rag import RAG

WEEK = 7 * 24 * 3600
ANSWERS = ("yes", "no", "unsure")
SLICES = 7
ASSIGNMENT_SECONDS = 120  # a puzzle handed out counts as held this long, or until answered


class Moot(Exception):
    """A puzzle's edit no longer makes sense: an earlier edit settled it."""


def consensus_settings(inst: Instance) -> cs.ConsensusSettings:
    s = inst.settings
    return _consensus_settings(s["MIN_VOTES"], s["MAX_VOTES"], s["RETIRE_CONFIDENCE"], s["APPLY_CONFIDENCE"],
                               s["BIG_EDIT_STAKE"], s["BIG_APPLY_CONFIDENCE"], s["BIG_MAX_VOTES"])


@functools.lru_cache(maxsize=8)
def _consensus_settings(min_votes, max_votes, retire_confidence, apply_confidence, big_edit_stake,
                        big_apply_confidence, big_max_votes) -> cs.ConsensusSettings:
    apply_confidence = max(apply_confidence, retire_confidence)
    return cs.ConsensusSettings.from_overrides({"min_votes": min_votes, "max_votes": max_votes,
                                                "big_max_votes": max(big_max_votes, max_votes),
                                                "retire_confidence": retire_confidence,
                                                "apply_confidence": apply_confidence,
                                                "big_edit_stake": big_edit_stake,
                                                "big_apply_confidence": max(big_apply_confidence, apply_confidence)})


def edit_stake(inst: Instance, puzzle: dict) -> float:
    """The share of same-segment voxel pairs the puzzle's edit would move: 2·|A|·|B| / Σ|segment|².

    |A| and |B| are the voxels of the two segments (merge) or of the part to
    cut off and the rest (split) in the current segmentation; 0 when moot.
    """
    agg = inst.agglomeration(puzzle["volume"])
    sizes = inst.supervoxel_sizes(puzzle["volume"])
    mapping = np.asarray(agg.mapping)
    segments = np.bincount(mapping, weights=sizes[:len(mapping)])
    if puzzle["kind"] == "merge":
        a, b = (agg.segment_of(sv) for sv in puzzle["anchors"])
        if a == b:
            return 0.0
        part, rest = segments[a], segments[b]
    else:
        moved = np.asarray(puzzle["supervoxels"], dtype=np.int64)
        part = float(sizes[moved].sum())
        rest = segments[agg.segment_of(int(moved[0]))] - part
    total = float(np.dot(segments[1:], segments[1:]))
    return 2.0 * part * rest / total if total else 0.0


def _int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ProofQuestError(f"{what} must be an integer id, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ProofQuestError(f"{what} must be an integer id, got {value!r}") from None


# ----------------------------------------------------------------------------- segmentation state

def proposed_edit(agg: Agglomeration, puzzle: dict) -> Edit:
    """Apply the puzzle's edit to the current segmentation; raise :class:`Moot` if settled."""
    if puzzle["kind"] == "merge":
        a, b = (agg.segment_of(sv) for sv in puzzle["anchors"])
        if a == b or 0 in (a, b):
            raise Moot("the two segments are already one")
        return agg.merge(a, b)
    moved = np.asarray(puzzle["supervoxels"], dtype=np.int64)
    parents = {agg.segment_of(int(sv)) for sv in moved}
    if len(parents) != 1:
        raise Moot("the part to cut off is already separate")
    parent = parents.pop()
    if parent == 0 or len(agg.members(parent)) == len(moved):
        raise Moot("the part to cut off is already a segment of its own")
    return agg.split(parent, moved)


def is_moot(agg: Agglomeration, puzzle: dict) -> bool:
    if puzzle["kind"] == "merge":
        a, b = (agg.segment_of(sv) for sv in puzzle["anchors"])
        return a == b
    parents = {agg.segment_of(int(sv)) for sv in puzzle["supervoxels"]}
    return len(parents) != 1 or len(agg.members(next(iter(parents)))) == len(puzzle["supervoxels"])


def apply_puzzle_edit(inst: Instance, puzzle: dict, *, author: str, provenance: dict) -> int | None:
    """Apply a decided puzzle's edit and log it; the log's sequence number, or None when moot.

    Runs inside the caller's write transaction; if that transaction fails the
    caller must :meth:`Instance.forget` the volume so memory follows the file.
    """
    agg = inst.agglomeration(puzzle["volume"])
    try:
        edit = proposed_edit(agg, puzzle)
    except Moot:
        return None
    return st.append_edit(inst.store, puzzle["volume"], edit.to_dict(), author=author, puzzle_id=puzzle["id"],
                          provenance=provenance)


# ----------------------------------------------------------------------------- assignment

def public_puzzle(puzzle: dict) -> dict:
    """What a player may see of a puzzle: never its truth or whether it is gold."""
    return {"id": puzzle["id"], "kind": puzzle["kind"], "question": pz.question_for(puzzle["kind"]),
            "slices": SLICES, "center": SLICES // 2,
            "labels": {"yes": "Yes, one neurite", "no": "No, two" if puzzle["kind"] == "split" else "No, separate",
                       "unsure": "Not sure"}}


def _priority(puzzle: dict, settings: cs.ConsensusSettings) -> float:
    """Most uncertain and most valuable first; puzzles close to retiring get finished."""
    p = puzzle["posterior"] if puzzle["posterior"] is not None else puzzle["score"]
    uncertainty = 1.0 - abs(2.0 * p - 1.0)
    progress = min(puzzle["n_votes"], settings.min_votes) / settings.min_votes
    return 0.4 * uncertainty + 0.4 * puzzle["score"] + 0.2 * progress


def _suspected_mergers(inst: Instance, aggs: dict[str, Agglomeration]) -> dict[str, set[int]]:
    """Per volume, the segments that an open split puzzle says may be two neurites."""
    out: dict[str, set[int]] = {v: set() for v in aggs}
    for volume, sv in st.open_split_parts(inst.store):
        if volume in aggs:
            out[volume].add(aggs[volume].segment_of(sv))
    return out


def _waits(puzzle: dict, agg: Agglomeration, suspects: set[int]) -> bool:
    """A merge onto a segment suspected of being two neurites waits for that split puzzle.

    Merges are named by one supervoxel on each side, so their order with a
    split matters: merged first, a piece that belongs elsewhere is dragged
    along, and in the simulated demo one such merge undid half of the crowd's
    gain (bench/bench_simulate.py). Waiting puzzles are still handed out when
    nothing else is left, so a lone player never runs dry.
    """
    return puzzle["kind"] == "merge" and any(agg.segment_of(sv) in suspects for sv in puzzle["anchors"])


def _gold_answers(inst: Instance, player_id: int) -> list[bool]:
    return [(v["supports_edit"] == 1) == bool(v["truth"]) for v in st.player_votes(inst.store, player_id)
            if v["gold"] and v["supports_edit"] is not None]


def _outstanding(inst: Instance, puzzle_id: int, now: float) -> int:
    """Players holding this puzzle without having answered it yet (recently)."""
    held = inst.assignments.get(puzzle_id, {})
    return sum(1 for t in held.values() if now - t < ASSIGNMENT_SECONDS)


def _hand_out(inst: Instance, puzzle: dict, player_id: int) -> dict:
    with inst._lock:
        inst.assignments.setdefault(puzzle["id"], {})[player_id] = time.time()
    return public_puzzle(puzzle)


def next_puzzle(inst: Instance, player: dict, *, exclude=(), rng: random.Random | None = None) -> dict:
    """A puzzle the player has not answered: gold now and then (often for new players).

    Among open puzzles the most uncertain and valuable come first, but a
    puzzle already held by as many players as it still needs votes is passed
    over, so a crowd playing at once spreads out instead of piling onto one.
    ``exclude`` lists puzzles to skip (the one on screen, when a client
    prefetches the next while its vote is still on the way).
    """
    exclude = {_int(p, "exclude") for p in (exclude or ())[:10]}
    if player is None:
        raise ProofQuestError("log in or play as a guest first")
    rng = rng or random
    s = inst.settings
    share = s["GOLD_SHARE_NEW"] if len(_gold_answers(inst, player["id"])) < 10 else s["GOLD_SHARE"]
    order = (True, False) if rng.random() < share else (False, True)
    settings = consensus_settings(inst)
    now = time.time()
    for gold in order:
        candidates = [p for p in st.assignable_puzzles(inst.store, player["id"], gold=gold)
                      if p["id"] not in exclude]
        if gold:
            if candidates:
                return _hand_out(inst, rng.choice(candidates), player["id"])
            continue
        aggs = {v: inst.agglomeration(v) for v in {p["volume"] for p in candidates}}
        suspects = _suspected_mergers(inst, aggs)
        waiting = {p["id"] for p in candidates if _waits(p, aggs[p["volume"]], suspects[p["volume"]])}
        candidates.sort(key=lambda p: (p["id"] in waiting, -_priority(p, settings)))
        fallback = None
        for puzzle in candidates:
            if fallback is not None and puzzle["id"] in waiting:
                break  # the rest wait, and a puzzle that does not wait is there: that one first
            if is_moot(aggs[puzzle["volume"]], puzzle):
                st.mark_moot(inst.store, puzzle["id"])  # only if still open: it may have retired meanwhile
                continue
            fallback = fallback or puzzle
            wanted = max(1, settings.min_votes - puzzle["n_votes"])
            if inst.assignments.get(puzzle["id"], {}).get(player["id"]) or \
                    _outstanding(inst, puzzle["id"], now) < wanted:
                return _hand_out(inst, puzzle, player["id"])
        if fallback is not None:
            return _hand_out(inst, fallback, player["id"])
    raise ProofQuestError("no puzzle is left for you right now: thank you! New ones come as the crowd decides")


# ----------------------------------------------------------------------------- votes

def _gold_feedback(inst, player, puzzle, value, scoring) -> tuple[int, int, dict | None]:
    """Points, new streak and feedback for a gold answer (truth known at once)."""
    if not puzzle["gold"] or puzzle["truth"] is None or value == cs.UNSURE:
        return 0, player["streak"], None
    truth = bool(puzzle["truth"])
    correct = (value == cs.SUPPORT) == truth
    history = _gold_answers(inst, player["id"])  # includes this vote
    misses = 0
    for ok in reversed(history):
        if ok:
            break
        misses += 1
    points = cs.points_for_outcome(value, truth, gold=True, streak=player["streak"], misses=misses,
                                   scoring=scoring)
    reliability = cs.reliability_from_counts(sum(history), len(history), consensus_settings(inst))
    st.set_reliabilities(inst.store, {player["id"]: float(reliability)})
    return points, cs.next_streak(player["streak"], value, truth), {
        "correct": correct, "answer": pz.correct_answer(puzzle["kind"], truth),
        "accuracy": cs.gold_accuracy(history, scoring)}


def _retire(inst, puzzle, decision, settings, scoring) -> list[dict]:
    """Retire a puzzle, apply its edit if the crowd said so, pay the voters who agreed."""
    votes = st.puzzle_votes(inst.store, puzzle["id"])
    provenance = {"puzzle": puzzle["id"], "confidence": decision.confidence,
                  "votes": [{"player": v["player_id"], "answer": v["answer"]} for v in votes]}
    edit_seq = None
    if decision.answer:
        edit_seq = apply_puzzle_edit(inst, puzzle, author="consensus", provenance=provenance)
    st.set_puzzle_state(inst.store, puzzle["id"], "retired", decision=decision.answer,
                        posterior=decision.posterior, confidence=decision.confidence, edit_seq=edit_seq)
    notices = []
    for v in votes:
        value = cs.vote_value(puzzle["kind"], v["answer"])
        if value == cs.UNSURE:
            continue
        voter = st.player(inst.store, v["player_id"])
        won = (value == cs.SUPPORT) == decision.answer
        bonus = cs.points_for_outcome(value, decision.answer, gold=False, streak=voter["streak"], misses=0,
                                      scoring=scoring)
        st.add_points(inst.store, voter["id"], bonus, "consensus", puzzle_id=puzzle["id"],
                      streak=cs.next_streak(voter["streak"], value, decision.answer))
        notices.append({"player_id": voter["id"], "message": {
            "puzzle": puzzle["id"], "won": won, "points": bonus, "edited": edit_seq is not None}})
    return notices


def cast_vote(inst: Instance, player_id: int, puzzle_id, answer, ms=None) -> dict:
    """Record a vote and everything it causes, in one transaction.

    Returns ``{"reply": ..., "player_id": ..., "notices": [...]}``: the reply
    for the voter (points gained, total, streak, gold feedback, retirement)
    and the notices for other voters of a puzzle that retired.
    """
    puzzle_id = _int(puzzle_id, "puzzle")
    if answer not in ANSWERS:
        raise ProofQuestError(f"unknown answer {answer!r}: use 'yes', 'no' or 'unsure'")
    ms = None if ms is None else max(0, min(_int(ms, "ms"), 3_600_000))
    settings, scoring = consensus_settings(inst), cs.Scoring()
    puzzle = st.puzzle(inst.store, puzzle_id)
    if puzzle is None or puzzle["tutorial"]:
        raise ProofQuestError(f"there is no puzzle {puzzle_id} to vote on; ask for the next one")
    try:
        with inst.store.write():
            puzzle = st.puzzle(inst.store, puzzle_id)  # re-read under the writer lock
            player = st.player(inst.store, player_id)
            if player is None:
                raise ProofQuestError("unknown player; log in again")
            value = cs.vote_value(puzzle["kind"], answer)
            points = cs.points_for_vote(value, scoring)
            st.add_vote(inst.store, puzzle_id, player_id, answer, None if value == 0 else value > 0, ms, points)
            bonus, streak, gold = _gold_feedback(inst, player, puzzle, value, scoring)
            st.add_points(inst.store, player_id, points + bonus, "vote", puzzle_id=puzzle_id, streak=streak)
            notices, retired = [], None
            if puzzle["state"] == "open" and not puzzle["gold"]:
                votes = st.puzzle_votes(inst.store, puzzle_id)
                rel = st.reliabilities(inst.store, [v["player_id"] for v in votes])
                prior_r = settings.reliability_prior_mean
                rule = cs.majority_decide if inst.settings["CONSENSUS_RULE"] == "majority" else cs.decide
                values = [cs.vote_value(puzzle["kind"], v["answer"]) for v in votes]
                weights = [rel.get(v["player_id"]) or prior_r for v in votes]
                decision = rule(values, weights, puzzle["score"], settings)
                if rule is cs.decide and (decision.answer or decision.state == "expert"):
                    # about to edit or give up: a big edit needs more certainty and may take more votes
                    # (sizes are only looked at now)
                    decision = cs.decide(values, weights, puzzle["score"], settings,
                                         stake=edit_stake(inst, puzzle))
                if decision.state == "retired":
                    notices = _retire(inst, puzzle, decision, settings, scoring)
                    retired = {"decision": decision.answer, "confidence": decision.confidence}
                else:
                    st.set_puzzle_state(inst.store, puzzle_id, decision.state, posterior=decision.posterior,
                                        confidence=decision.confidence)
            me = st.player(inst.store, player_id)
    except BaseException:
        inst.forget(puzzle["volume"])  # memory may hold an edit the rolled-back log lacks
        raise
    with inst._lock:
        inst.assignments.get(puzzle_id, {}).pop(player_id, None)
    own = next((n["message"] for n in notices if n["player_id"] == player_id), None)
    reply = {"puzzle": puzzle_id, "points": points + bonus + (own["points"] if own else 0), "total": me["points"],
             "streak": me["streak"], "gold": gold, "retired": retired}
    return {"reply": reply, "player_id": player_id, "notices": [n for n in notices if n["player_id"] != player_id]}


def expert_queue(inst: Instance) -> list[dict]:
    rows = st.puzzles(inst.store, state="expert")
    for p in rows:
        p["votes"] = st.puzzle_votes(inst.store, p["id"])
        p["question"] = pz.question_for(p["kind"])
    return rows


def expert_decide(inst: Instance, admin_id: int, puzzle_id, decision) -> dict:
    """An admin settles a puzzle from the expert queue (``decision``: apply the edit or not)."""
    puzzle_id = _int(puzzle_id, "puzzle")
    if decision not in (True, False, "apply", "reject"):
        raise ProofQuestError("decision is 'apply' or 'reject'")
    apply = decision in (True, "apply")
    puzzle = st.puzzle(inst.store, puzzle_id)
    if puzzle is None or puzzle["state"] not in ("expert", "open"):
        raise ProofQuestError(f"puzzle {puzzle_id} is not waiting for a decision")
    try:
        with inst.store.write():
            seq = apply_puzzle_edit(inst, puzzle, author=f"admin:{admin_id}",
                                    provenance={"puzzle": puzzle_id, "expert": admin_id}) if apply else None
            st.set_puzzle_state(inst.store, puzzle_id, "retired", decision=apply, confidence=1.0, edit_seq=seq)
    except BaseException:
        inst.forget(puzzle["volume"])
        raise
    return {"puzzle": puzzle_id, "decision": apply, "edit_seq": seq}


# ----------------------------------------------------------------------------- images

def _window(volume, puzzle):
    return pz.puzzle_window(puzzle["location"], volume.shape, slices=SLICES)


def _render(inst: Instance, puzzle: dict, variant: str):
    volume = inst.volumes.open(puzzle["volume"])
    box = _window(volume, puzzle)
    image = volume.read("image", box)
    if variant == "truth":
        return [{"plain": png, "overlay": png} for png in pz.render_truth(image, volume.read("groundtruth", box))]
    agg = inst.agglomeration(puzzle["volume"])
    supervoxels = volume.read("supervoxels", box)
    if puzzle["kind"] == "merge":
        a, b = (agg.members(agg.segment_of(sv)) for sv in puzzle["anchors"])
    else:
        b = np.asarray(puzzle["supervoxels"])
        a = np.setdiff1d(agg.members(agg.segment_of(int(b[0]))), b)
    return pz.render_slices(image, np.isin(supervoxels, a), np.isin(supervoxels, b))


def puzzle_image(inst: Instance, player: dict, puzzle_id: int, z: int, variant: str) -> Path:
    """The PNG of one slice of a puzzle, rendered once and cached."""
    puzzle = st.puzzle(inst.store, puzzle_id)
    if puzzle is None:
        raise ProofQuestError(f"there is no puzzle {puzzle_id}")
    if not 0 <= z < SLICES:
        raise ProofQuestError(f"slice {z} is outside the puzzle's 0..{SLICES - 1}")
    if variant == "truth" and not puzzle["tutorial"]:
        raise ProofQuestError("the truth is shown only for practice puzzles")
    cache = pz.PuzzleImageCache(inst.cache_dir / "puzzles")
    key = f"{puzzle_id}-truth" if variant == "truth" else str(puzzle_id)
    return cache.get(key, z, variant != "plain", lambda: _render(inst, puzzle, variant))


# ----------------------------------------------------------------------------- tutorial

def tutorial_puzzles(inst: Instance) -> list[dict]:
    """Practice puzzles with their answers, for immediate feedback."""
    out = []
    for p in st.puzzles(inst.store, tutorial=True):
        view = public_puzzle(p)
        view["answer"] = pz.correct_answer(p["kind"], p["truth"])
        out.append(view)
    return out


def finish_tutorial(inst: Instance, player_id: int) -> None:
    st.set_tutorial_done(inst.store, player_id)


# ----------------------------------------------------------------------------- scores and records

def leaderboard(inst: Instance, period: str = "all", limit: int = 20) -> list[dict]:
    if period not in ("all", "week"):
        raise ProofQuestError("period is 'all' or 'week'")
    return st.leaderboard(inst.store, since=time.time() - WEEK if period == "week" else None, limit=limit)


def player_record(inst: Instance, player_id: int) -> dict:
    player = st.player(inst.store, player_id)
    if player is None:
        raise ProofQuestError("unknown player")
    votes = st.player_votes(inst.store, player_id)
    gold = _gold_answers(inst, player_id)
    edits = [{"puzzle": v["puzzle_id"], "volume": v["volume"], "edit_seq": v["edit_seq"], "kind": v["kind"]}
             for v in votes if v["edit_seq"] is not None and v["supports_edit"] == 1]
    history, total = [], 0
    for e in st.points_history(inst.store, player_id):
        total += e["points"]
        history.append({"t": e["created"], "points": total})
    return {"player": player, "votes": len(votes), "gold_answers": len(gold),
            "gold_accuracy": cs.gold_accuracy(gold, cs.Scoring()), "edits": edits, "points_history": history}


def game_stats(inst: Instance) -> dict:
    rows = inst.store.query("SELECT state, COUNT(*) AS n FROM puzzles WHERE tutorial = 0 AND gold = 0"
                            " GROUP BY state")
    counts = {r["state"]: r["n"] for r in rows}
    return {"puzzles": sum(counts.values()), "solved": counts.get("retired", 0) + counts.get("moot", 0),
            "expert": counts.get("expert", 0), "votes": st.vote_count(inst.store),
            "edits": sum(st.edit_count(inst.store, v) for v in inst.volumes.names()),
            "improvement": quality_improvement(inst)}


def readiness(inst: Instance) -> dict:
    jobs = st.jobs(inst.store)
    ready = st.puzzle_count(inst.store) > 0 and not any(j["state"] == "running" for j in jobs)
    return {"ready": ready, "puzzles": st.puzzle_count(inst.store), "jobs": jobs}


def refit_reliabilities(inst: Instance) -> int:
    """Re-estimate every player's reliability from all votes (Dawid–Skene EM); returns players fitted."""
    votes = st.all_votes(inst.store)
    if not votes:
        return 0
    players = np.array([v["player_id"] for v in votes])
    puzzles = np.array([v["puzzle_id"] for v in votes])
    player_ids, player_index = np.unique(players, return_inverse=True)
    puzzle_ids, puzzle_index = np.unique(puzzles, return_inverse=True)
    answers = np.where(np.array([v["supports_edit"] for v in votes]) == 1, cs.SUPPORT, cs.OPPOSE)
    gold = {int(puzzle_index[i]): bool(v["truth"]) for i, v in enumerate(votes)
            if v["gold"] and v["truth"] is not None}
    scores = {p["id"]: p["score"] for p in inst.store.query("SELECT id, score FROM puzzles")}
    fitted = cs.estimate_reliability(np.stack([player_index, puzzle_index, answers], axis=1), gold,
                                     consensus_settings(inst),
                                     scores=np.array([scores[int(p)] for p in puzzle_ids]),
                                     n_players=len(player_ids))
    st.set_reliabilities(inst.store, {int(p): float(r) for p, r in zip(player_ids, fitted)})
    return len(player_ids)


# ----------------------------------------------------------------------------- quality (admin)

def _scored_volumes(inst: Instance):
    for name in inst.volumes.names():
        volume = inst.volumes.open(name)
        if volume.has("groundtruth") and volume.has_side("sv_gt_table") and volume.has_side("mapping"):
            yield name, volume


def quality_report(inst: Instance) -> list[dict]:
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
        table, rag = pipeline.truth_table(volume), RAG.from_arrays(volume.load_side("rag"))
        agg = inst.agglomeration(name)
        rows.append({"volume": name, "edits": len(agg.edits),
                     "initial": quality.evaluate_mapping(table, volume.load_side("mapping"), rag),
                     "current": quality.evaluate_mapping(table, agg.mapping, rag)})
    inst.quality_cache = (key, rows)
    return rows


def quality_improvement(inst: Instance) -> dict | None:
    """How much the crowd's edits lowered the adapted Rand error, summed over scored volumes."""
    report = quality_report(inst)
    if not report:
        return None
    initial = sum(r["initial"]["adapted_rand_error"] for r in report)
    current = sum(r["current"]["adapted_rand_error"] for r in report)
    return {"initial_error": initial, "current_error": current,
            "percent": 100.0 * (initial - current) / initial if initial else 0.0}


def quality_curve_png(inst: Instance) -> Path:
    """The metric curves over the edit log, rendered once per edit count."""
    volumes = list(_scored_volumes(inst))
    key = "_".join(f"{name}-{len(inst.agglomeration(name).edits)}" for name, _ in volumes) or "none"
    path = inst.cache_dir / f"quality-{key}.png"
    if not path.exists():
        histories = {name: quality.history(pipeline.truth_table(volume), volume.load_side("mapping"),
                                           inst.agglomeration(name).edits, RAG.from_arrays(volume.load_side("rag")))
                     for name, volume in volumes}
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(quality.curve_png(histories))
        temporary.replace(path)
    return path
