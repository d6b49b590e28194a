"""What a vote does: record it, update its puzzle's consensus and, when the puzzle retires, edit.

One vote, end to end (see docs/ARCHITECTURE.md): :func:`cast_vote` records the
vote, updates the puzzle's consensus and — when the puzzle retires — appends
its edit to the log, all in one transaction of the store's single writer; the
in-memory segmentation follows only after the COMMIT. The caller acknowledges
only after it returns. An expert's decision (:func:`expert_decide`) goes the
same way. No Flask here: the web layer calls these functions.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter

from game.app import store as st
from game.crowd import classes
from game.crowd import consensus as cs
from game.crowd import scoring as sc
from game.crowd import settled
from game.crowd import voices
from game.crowd.assignment import check_ticket, checked_id, waiting_merges
from game.crowd.reliability import refit_if_due, update_player
from game.errors import ProofQuestError
from game.puzzles.edit import Moot, PuzzleEdit, correct_answer, question_for

ANSWERS = ("yes", "no", "unsure")
log = logging.getLogger(__name__)


def commit_puzzle_edit(inst, puzzle: dict, *, author: str, provenance: dict) -> int | None:
    """Append a decided puzzle's edit to the log inside the caller's write transaction.

    Returns the edit's sequence number, or None when the edit no longer fits
    the segmentation (moot). Memory follows after the COMMIT.
    """
    agg = inst.agglomeration(puzzle["volume"])
    try:
        edit = PuzzleEdit.of(puzzle).plan(agg)
    except Moot:
        return None
    return inst.segmentations.commit_edit(puzzle["volume"], edit, author=author, puzzle_id=puzzle["id"],
                                          provenance=provenance)


def _known_truth(inst, player: dict, puzzle: dict, value: int) -> tuple[int, int, dict | None]:
    """Points, new streak and feedback for an answer to a puzzle whose truth is known.

    Secret gold updates the player's standing and shows nothing: not the
    answer, not a bonus, not a streak (each would tell which answers were
    right, and a throwaway account could harvest them). A teach puzzle shows
    its outcome and pays for it, but never enters the player's standing.
    """
    if not puzzle["gold"] or puzzle["truth"] is None:
        return 0, player["streak"], None
    if not puzzle["teach"]:
        if value != cs.UNSURE:
            update_player(inst, player["id"])
        return 0, player["streak"], None
    truth = bool(puzzle["truth"])
    if value == cs.UNSURE:
        return 0, player["streak"], {"correct": None, "answer": correct_answer(puzzle["kind"], truth)}
    history = teach_answers(inst, player["id"])  # includes this vote
    misses = 0
    for ok in reversed(history):
        if ok:
            break
        misses += 1
    points = sc.points_for_outcome(value, truth, gold=True, streak=player["streak"], misses=misses,
                                   scoring=inst.scoring)
    return points, sc.next_streak(player["streak"], value, truth), {
        "correct": (value == cs.SUPPORT) == truth, "answer": correct_answer(puzzle["kind"], truth),
        "accuracy": sc.gold_accuracy(history, inst.scoring)}


def teach_answers(inst, player_id: int) -> list[bool]:
    """Whether each of the player's yes/no answers to teach puzzles was right, oldest first."""
    return [(v["supports_edit"] == 1) == bool(v["truth"]) for v in st.player_votes(inst.store, player_id)
            if v["teach"] and v["supports_edit"] is not None and v["truth"] is not None]


def _ballots(inst, puzzle: dict) -> tuple[list[int], list[float], list[bool]]:
    """A puzzle's votes in edit space (oldest first), their voters' reliabilities, and whether each counts;
    the counted votes of players who share a voice (:mod:`game.crowd.voices`) count as one."""
    answers, reliabilities, counted, voice = st.puzzle_ballot_columns(inst.store, puzzle["id"])
    unknown, value = inst.consensus.reliability_prior_mean, {a: cs.vote_value(puzzle["kind"], a) for a in set(answers)}
    values, reliabilities, counted = [value[a] for a in answers], [r or unknown for r in reliabilities], \
        [bool(c) for c in counted]
    if any(v is not None for v in voice):
        return voices.one_voice(values, reliabilities, list(voice), counted)
    return values, reliabilities, counted


def _decide(inst, puzzle: dict) -> cs.Decision:
    """The puzzle's consensus after its latest vote (inside the vote's transaction).

    Only established players' votes count (:mod:`game.crowd.reliability`), those of one voice as one.
    """
    settings = inst.consensus
    values, weights, counted = _ballots(inst, puzzle)
    if inst.settings["CONSENSUS_RULE"] == "majority":
        return cs.majority_decide(values, weights, puzzle["score"], settings)
    decision = cs.decide(values, weights, puzzle["score"], settings, counted=counted)
    if decision.state != "open":
        # about to decide or give up: on a big edit no vote weighs more than one at BIG_RELIABILITY_CAP, and
        # applying it needs more certainty and may take more votes (sizes are only looked at now)
        stake = PuzzleEdit.of(puzzle).stake(inst.agglomeration(puzzle["volume"]),
                                           inst.supervoxel_sizes(puzzle["volume"]))
        decision = cs.decide(values, weights, puzzle["score"], settings, stake=stake, counted=counted)
    return decision


def _belief(inst, puzzle: dict, value: int) -> float | None:
    """The puzzle's ``belief`` once this answer is in (:func:`game.app.store._crowd_belief`): its detector's
    score moved by each answer of a player past the introduction as by one of reliability
    ESTABLISHED_ALTERNATIVE (a careful player's), whether their votes count or not; None for "unsure"."""
    if value == cs.UNSURE:
        return None
    supports = puzzle["supports"] + (value == cs.SUPPORT)
    against = puzzle["answers"] + 1 - supports
    careful = inst.settings["ESTABLISHED_ALTERNATIVE"]
    return cs.posterior([1] * supports + [-1] * against, [careful] * (supports + against), puzzle["score"],
                        inst.consensus)


def _retire(inst, puzzle: dict, decision: cs.Decision) -> tuple[list[dict], int | None]:
    """Retire a puzzle, append its edit if the crowd said so, pay the voters who agreed."""
    votes = st.puzzle_ballots(inst.store, puzzle["id"])
    _, _, counts = _ballots(inst, puzzle)  # in the same order: a voice's votes count once, as its first one
    counted = [v for v, c in zip(votes, counts) if c]
    backers = {v["player_id"] for v in votes if cs.vote_value(puzzle["kind"], v["answer"]) == cs.SUPPORT}
    provenance = {"puzzle": puzzle["id"], "source": "crowd", "confidence": decision.confidence,
                  "posterior": decision.posterior,
                  "votes": [{"player": v["player_id"], "answer": v["answer"]} for v in votes],
                  "counted": [v["player_id"] for v in counted],
                  # the players whose counted votes decided the edit (for the admin's record)
                  "deciders": [v["player_id"] for v in counted if v["player_id"] in backers],
                  # every player who backed it, counted or not: credited for it. Credit for counted votes
                  # alone told a throwaway account whether its votes counted (its gold answers were right).
                  "supporters": [v["player_id"] for v in votes if v["player_id"] in backers]}
    edit_seq = None
    if decision.answer:
        edit_seq = commit_puzzle_edit(inst, puzzle, author="consensus", provenance=provenance)
    st.set_puzzle_state(inst.store, puzzle["id"], "retired", decision=decision.answer,
                        posterior=decision.posterior, confidence=decision.confidence, edit_seq=edit_seq)
    st.mark_counted(inst.store, puzzle["id"], provenance["counted"])
    notices = []
    for v in votes:
        value = cs.vote_value(puzzle["kind"], v["answer"])
        if value == cs.UNSURE:
            continue
        voter = st.player(inst.store, v["player_id"])
        won = (value == cs.SUPPORT) == decision.answer
        bonus = sc.points_for_outcome(value, decision.answer, gold=False, streak=voter["streak"], misses=0,
                                      scoring=inst.scoring)
        st.add_points(inst.store, voter["id"], bonus, "consensus", puzzle_id=puzzle["id"],
                      streak=sc.next_streak(voter["streak"], value, decision.answer))
        notices.append({"player_id": voter["id"], "message": {
            "puzzle": puzzle["id"], "won": won, "points": bonus, "edited": edit_seq is not None}})
    return notices, edit_seq


def _settle(inst, puzzle: dict) -> tuple[cs.Decision, list[dict], int | None]:
    """Decide a crowd puzzle on its votes as they count now, inside the caller's write transaction: retire
    it (appending its edit when the crowd said so, paying the voters), or store where it stands.

    Returns the decision, the voters' notices and the edit's sequence number (None when none was made).
    """
    decision = _decide(inst, puzzle)
    if decision.state == "retired":
        notices, edit_seq = _retire(inst, puzzle, decision)
        return decision, notices, edit_seq
    counted = decision.votes > 0  # votes that weigh nothing leave it as no vote would
    st.set_puzzle_state(inst.store, puzzle["id"], decision.state,
                        posterior=decision.posterior if counted else None,
                        confidence=decision.confidence if counted else None, counted_votes=decision.votes)
    return decision, [], None


def _after_decision(inst, puzzle: dict, retired: bool, edit_seq: int | None) -> None:
    """What follows a puzzle leaving the open ones, after the COMMIT, without delaying anyone's answer (on
    the server's worker): its place goes to a waiting candidate, the segments it changed are rescanned, and
    a retirement may settle puzzles beyond doubt."""
    inst.pool.rescan_later(puzzle["volume"], puzzle, edit_seq)
    if retired:
        inst.later(promote_settled, inst, puzzle["volume"])


# Seconds between two passes of redecide, and the least a puzzle waits in one for a vote that decides it instead
# (at 550 votes a second, 50 votes between refits came every 0.1 s)
REDECIDE_SECONDS = 2.0
# and between a pass and one asked for at once (players finding no puzzle left, each asking every few seconds)
REDECIDE_AT_ONCE_SECONDS = 0.25
# a change of an open puzzle's posterior smaller than this is not written when it is decided again
REDECIDE_POSTERIOR_STEP = 0.01


def redecide(inst, *, at_once: bool = False) -> int:
    """Decide again the open crowd puzzles whose voters' standing changed, unless a vote does it first;
    returns how many left the open ones.

    A puzzle is otherwise decided only when a vote comes, but what its votes
    count for changes after them: a voter becomes established (their vote
    starts to count), a record grows or shrinks, an admin suspends an
    account. A puzzle every player has answered would wait forever on a
    posterior measured when half its voters did not count yet. A puzzle that
    still gets votes needs none of this (each vote decides it on the
    standings of the moment), so the open puzzles of the players whose
    standing changed (:meth:`game.app.instance.Instance.standing_changed`)
    wait: the first pass at least ``REDECIDE_SECONDS`` later decides those
    that got no vote meanwhile and that nobody holds. A crowd voting fast
    pays a query or two a pass, a pass at most every ``REDECIDE_SECONDS``.
    A merge that waits for a split (:func:`game.crowd.assignment.waiting_merges`)
    keeps waiting here too, until the split is settled. ``at_once`` (a
    player found no puzzle left, or an admin suspended one: no vote may
    come) decides at once those that nobody holds.

    Passes follow each refit (:func:`refit_if_due`), a player finding no
    puzzle left, and a suspension. Each puzzle is looked at first without
    the writer and, when its decision moves, decided in a write transaction
    of its own that reads it again, so a vote arriving meanwhile is never
    decided twice; one that fails is asked again by the next pass. Voters of
    a puzzle that retires here are told through ``inst.notify`` (the web
    layer's broadcaster) when one is set.
    """
    inst.redecide_queued = False
    now = time.monotonic()
    if now - inst.redecided_at < (REDECIDE_AT_ONCE_SECONDS if at_once else REDECIDE_SECONDS) or \
            not inst.redecide_lock.acquire(blocking=False):
        return 0  # a pass ran a moment ago, or is running: what it leaves waits for the next
    try:
        inst.redecided_at = now
        changed = inst.take_standing_changed()
        try:
            fresh = st.open_puzzles_voted_by(inst.store, changed) if changed else {}
            waiting = inst.undecided
            still_open = st.open_vote_counts(inst.store, waiting) if waiting else {}
        except BaseException:
            inst.standing_changed(dict.fromkeys(changed))  # asked again by the next pass
            raise
        for puzzle_id, votes_now in fresh.items():
            waiting[puzzle_id] = (votes_now, -float("inf") if at_once else now)
            still_open[puzzle_id] = votes_now
        due, waits, held = [], waiting_merges(inst) if waiting else set(), time.time()
        for puzzle_id, (votes_then, since) in list(waiting.items()):
            if still_open.get(puzzle_id) != votes_then:
                del waiting[puzzle_id]  # decided, or a vote came and decided it on the standings of the moment
            elif (at_once or now - since >= REDECIDE_SECONDS) and puzzle_id not in waits and \
                    not inst.assignments.outstanding(puzzle_id, held):
                due.append(puzzle_id)
        return _redecide(inst, due)
    finally:
        inst.redecide_lock.release()


def redecide_soon(inst) -> None:
    """Ask for a pass of :func:`redecide` at once on the worker, unless one is already queued."""
    if not inst.redecide_queued and time.monotonic() - inst.redecided_at >= REDECIDE_AT_ONCE_SECONDS:
        inst.redecide_queued = True
        inst.later(functools.partial(redecide, inst, at_once=True))


def _moves(puzzle: dict, decision: cs.Decision) -> bool:
    """Whether a decision changes what is stored of an open puzzle: its state, its counted votes (the order
    reads them), or its posterior by more than ``REDECIDE_POSTERIOR_STEP``."""
    if decision.state != "open" or decision.votes != puzzle["counted_votes"]:
        return True
    if decision.votes == 0:
        return False  # stored as no posterior: nothing counts yet
    return puzzle["posterior"] is None or abs(decision.posterior - puzzle["posterior"]) > REDECIDE_POSTERIOR_STEP


def _redecide(inst, puzzle_ids: list[int]) -> int:
    """Decide these puzzles again, each in a transaction of its own; each leaves ``inst.undecided`` once
    decided (or found unchanged), and stays there for the next pass when its decision fails."""
    left = 0
    for puzzle_id in sorted(puzzle_ids):
        try:
            puzzle = st.puzzle(inst.store, puzzle_id)  # a look first, without the writer: most change nothing
            if puzzle is None or puzzle["state"] != "open" or not _moves(puzzle, _decide(inst, puzzle)):
                inst.undecided.pop(puzzle_id, None)
                continue
            with inst.store.write():
                puzzle = st.puzzle(inst.store, puzzle_id)
                if puzzle is None or puzzle["state"] != "open":
                    decision = None  # decided by a vote meanwhile
                else:
                    decision, notices, edit_seq = _settle(inst, puzzle)
        except Exception:
            log.exception("deciding puzzle %s again failed; the next pass asks again", puzzle_id)
            continue
        inst.undecided.pop(puzzle_id, None)
        if decision is None or decision.state == "open":
            continue
        left += 1
        _after_decision(inst, puzzle, decision.state == "retired", edit_seq)
        if notices and inst.notify is not None:
            inst.notify(notices)
    return left


def cast_vote(inst, player_id: int, puzzle_id, answer, ms=None, ticket=None) -> dict:
    """Record a vote and everything it causes, in one transaction.

    The vote needs the ticket its puzzle was handed out with
    (:func:`game.crowd.assignment.check_ticket`); a crowd puzzle that was
    decided or made moot meanwhile refuses it, and nothing is paid. Returns
    ``{"reply": ..., "player_id": ..., "notices": [...]}``: the reply for the
    voter (points gained, total, streak, the outcome of a teach puzzle, and
    when the puzzle retired its decision and whether the voter's side won)
    and the notices for the other voters of a puzzle that retired.
    """
    puzzle_id = checked_id(puzzle_id, "puzzle")
    if answer not in ANSWERS:
        raise ProofQuestError(f"unknown answer {str(answer)[:20]!r}: use 'yes', 'no' or 'unsure'")
    ms = None if ms is None else max(0, min(checked_id(ms, "ms"), 3_600_000))
    if not 0 < puzzle_id < 2**63:
        raise ProofQuestError(f"there is no puzzle {puzzle_id} to vote on; ask for the next one")
    # past the introduction (a count of gold answers, right or wrong: nothing the voter may not know), an
    # answer moves the hand-out order whether it counts or not; before it, a throwaway account moves nothing
    seen = inst.assignments.introduced(inst, player_id)
    with inst.store.write():
        puzzle = st.puzzle(inst.store, puzzle_id)
        if puzzle is None or puzzle["tutorial"]:
            raise ProofQuestError(f"there is no puzzle {puzzle_id} to vote on; ask for the next one")
        player = st.player(inst.store, player_id)
        if player is None:
            raise ProofQuestError("unknown player; log in again")
        classes.round_rules(inst.store, player_id)  # a student answers only while their round runs
        check_ticket(inst.ticket_key, player_id, puzzle_id, ticket, inst.settings["ASSIGNMENT_TTL"])
        if not puzzle["gold"] and puzzle["state"] != "open":
            raise ProofQuestError(f"puzzle {puzzle_id} was decided a moment ago; your answer is not needed, "
                                  "ask for the next one")
        value = cs.vote_value(puzzle["kind"], answer)
        points = sc.points_for_vote(value, inst.scoring)
        vote_id = st.add_vote(inst.store, puzzle_id, player_id, answer, None if value == 0 else value > 0, ms,
                              points, seen=seen or bool(puzzle["gold"]),
                              belief=_belief(inst, puzzle, value) if seen and not puzzle["gold"] else None)
        bonus, streak, feedback = _known_truth(inst, player, puzzle, value)
        me = st.add_points(inst.store, player_id, points + bonus, "vote", puzzle_id=puzzle_id, streak=streak)
        notices, retired, edit_seq, left_open = [], None, None, False
        if not puzzle["gold"]:
            decision, notices, edit_seq = _settle(inst, puzzle)
            left_open = decision.state != "open"
            if decision.state == "retired":
                # never the confidence: the posterior over counted votes told how much the voter's vote weighed
                retired = {"decision": decision.answer,
                           "won": None if value == cs.UNSURE else (value == cs.SUPPORT) == decision.answer}
        if notices:  # the voter was paid again for agreeing with the decision
            me = st.player(inst.store, player_id)
    inst.assignments.release(puzzle_id, player_id)
    if left_open:
        _after_decision(inst, puzzle, retired is not None, edit_seq)
    if refit_if_due(inst, vote_id):  # the vote's id counts the votes: one vote reaches each multiple
        inst.later(redecide, inst)  # after the refit, on the same worker: what the new standings decide
    own = next((n["message"] for n in notices if n["player_id"] == player_id), None)
    reply = {"puzzle": puzzle_id, "points": points + bonus + (own["points"] if own else 0), "total": me["points"],
             "streak": me["streak"], "feedback": feedback, "retired": retired}
    return {"reply": reply, "player_id": player_id, "notices": [n for n in notices if n["player_id"] != player_id]}


def recheck_voices(inst, players) -> dict[str, int]:
    """Decide again the crowd decisions that these players' votes took part in, now that their voices changed
    (:func:`game.crowd.reliability.refresh_voices`); returns how many were kept, changed, left because a
    later edit depends on them, and failed.

    Only what a voice changes is acted on: a decision is undone when its
    votes as they count now, a voice's as one, no longer make it and a
    voice had two or more counted votes in it (a decision that today's
    standings alone would change, a voice counted once, is left alone). Its
    edit is then reverted (an undo entry in the log, attributed to this
    check, as an admin's revert would be), unless a later edit still in
    effect moved the same supervoxels, or an admin reverted it already, or
    re-applied it after (it stays as it is, logged); the voters' consensus points for it
    are taken back; the puzzle is decided again on its votes and stays
    open for more when they decide nothing (an edit the voice alone carried
    waits for players who have not voted on it). A puzzle the voice sent to
    the expert queue by filling it is decided again too. Newest edit first,
    so that a chain of such edits unwinds. Each puzzle in a write
    transaction of its own; the live segmentation follows each COMMIT.
    """
    from game.app import editlog  # (it reads the instance, which imports this module's callers)
    out = {"kept": 0, "changed": 0, "blocked": 0, "failed": 0}
    chains: dict[str, tuple[int, dict]] = {}  # volume -> (edits in its log, chains): read again after an edit
    try:
        rows = st.decided_with(inst.store, players)
    except Exception:
        log.exception("finding the decisions of players %s to check again failed", sorted(players)[:10])
        out["failed"] += 1
        return out
    for row in rows:
        undo, notices = None, []
        try:
            with inst.store.write():
                puzzle = st.puzzle(inst.store, row["id"])
                if puzzle is None or puzzle["state"] not in ("retired", "expert"):
                    continue
                voiced = _decide(inst, puzzle)
                if voiced.state == puzzle["state"] and (voiced.state == "expert" or
                                                        voiced.answer == bool(puzzle["decision"])):
                    out["kept"] += 1  # its votes, a voice's as one, still decide it so
                    continue
                _, _, counted, voice = st.puzzle_ballot_columns(inst.store, puzzle["id"])
                members = Counter(v for v, c in zip(voice, counted) if v is not None and c)
                dropped = st.counted_then_not_now(inst.store, puzzle["id"], players)
                if (not members or max(members.values()) < 2) and not dropped:
                    out["kept"] += 1  # no voice counted twice in it, no vote of these players stopped counting:
                    continue  # the change is drift of standings
                if puzzle["state"] == "retired" and puzzle["decision"] and puzzle["edit_seq"] is not None:
                    volume, seq = puzzle["volume"], puzzle["edit_seq"]
                    edits = st.edit_count(inst.store, volume)
                    if chains.get(volume, (None,))[0] != edits:
                        chains[volume] = (edits, editlog.chains(st.edit_log(inst.store, volume)))
                    chain_of = chains[volume][1]
                    chain = chain_of.get(seq, [])
                    if len(chain) > 1:
                        out["kept"] += 1  # an admin reverted it (and may have re-applied it): theirs, not the crowd's
                        continue
                    try:
                        undo = editlog.undo_head(
                            inst, volume, seq, chain_of, revert=True, author="voices", puzzle_id=puzzle["id"],
                            provenance={"source": "revert", "revert": seq, "puzzle": puzzle["id"],
                                        "reason": "its deciding votes share one voice"})
                    except ProofQuestError as exc:  # later edits depend on it, or the log refuses the undo
                        log.warning("edit #%s of %r (puzzle %s), carried by votes that share a voice, stays: %s",
                                    seq, volume, puzzle["id"], exc)
                        out["blocked"] += 1
                        continue
                if puzzle["state"] == "retired":
                    st.reopen_puzzle(inst.store, puzzle["id"])
                    st.take_back_consensus_points(inst.store, puzzle["id"])  # paid again when it is decided again
                    puzzle = st.puzzle(inst.store, puzzle["id"])
                decision, notices, edit_seq = _settle(inst, puzzle)
        except Exception:
            log.exception("deciding puzzle %s again for shared voices failed", row["id"])
            out["failed"] += 1
            continue
        out["changed"] += 1
        if undo is not None:
            inst.pool.rescan_later(puzzle["volume"], puzzle, undo)
        if decision.state != "open":
            _after_decision(inst, puzzle, decision.state == "retired", edit_seq)
        if notices and inst.notify is not None:
            inst.notify(notices)
    if out["changed"] or out["blocked"] or out["failed"]:
        log.info("decisions made with shared voices decided again: %s", out)
    return out


def apply_known_answers(inst, volume: str) -> int:
    """Apply the edits that puzzles with known truth (practice, teach, gold) say are right; returns how many.

    Each is logged as a known answer, attributed to its role, not to the
    crowd; splits go first (a merge named by one supervoxel per side would
    drag a piece that belongs elsewhere along). One transaction per edit, so
    each is planned on the state the previous one left.
    """
    known = [p for p in st.puzzles(inst.store, volume=volume, tutorial=None)
             if (p["gold"] or p["tutorial"]) and p["truth"]]
    applied = 0
    for puzzle in sorted(known, key=lambda p: (p["kind"] != "split", p["made"])):
        role = "practice" if puzzle["tutorial"] else "teach" if puzzle["teach"] else "gold"
        with inst.store.write():
            seq = commit_puzzle_edit(inst, puzzle, author="known-answer",
                                     provenance={"puzzle": puzzle["id"], "source": "known answer", "role": role})
        applied += seq is not None
    return applied


def expert_queue(inst) -> list[dict]:
    """The puzzles waiting for an expert, each with its votes, question and the counted votes' agreement.

    ``agreement`` is the share of the counted votes' weight that supports the
    edit (:func:`game.crowd.consensus.agreement`), each vote weighing at most
    as one at ``BIG_RELIABILITY_CAP`` as on a big edit; ``contested`` says the
    crowd's posterior favoured the edit (at least ``APPLY_CONFIDENCE``) while
    its voters were divided (agreement under ``BIG_APPLY_AGREEMENT``): a big
    edit sent here instead of being applied, or a puzzle whose posterior the
    detector's score carried for the edit while its votes leaned against it
    (no decision goes against the votes' lean: it waited here for an expert).
    """
    settings = inst.consensus
    rows = st.puzzles(inst.store, state="expert")
    for p in rows:
        p["votes"] = st.puzzle_votes(inst.store, p["id"])
        p["question"] = question_for(p["kind"])
        values, weights, counted = _ballots(inst, p)
        weights = [min(w, settings.big_reliability_cap) for w in weights]
        p["agreement"] = cs.agreement(values, weights, settings, counted=counted)
        p["contested"] = (p["posterior"] or 0.0) >= settings.apply_confidence \
            and p["agreement"] < settings.big_apply_agreement
    return rows


def expert_decide(inst, admin_id: int, puzzle_id, decision) -> dict:
    """An admin settles a puzzle from the expert queue (``decision``: apply the edit or not).

    The puzzle's state is read inside the write transaction, so two admins
    deciding at once cannot both settle it: the second is told it is decided.
    """
    puzzle_id = checked_id(puzzle_id, "puzzle")
    if decision not in (True, False, "apply", "reject"):
        raise ProofQuestError("decision is 'apply' or 'reject'")
    apply = decision in (True, "apply")
    with inst.store.write():
        puzzle = st.puzzle(inst.store, puzzle_id) if 0 < puzzle_id < 2**63 else None
        if puzzle is None or puzzle["state"] not in ("expert", "open"):
            raise ProofQuestError(f"puzzle {puzzle_id} is not waiting for a decision")
        seq = commit_puzzle_edit(inst, puzzle, author=f"admin:{admin_id}",
                                 provenance={"puzzle": puzzle_id, "source": "expert", "expert": admin_id}) \
            if apply else None
        st.set_puzzle_state(inst.store, puzzle_id, "retired", decision=apply, confidence=1.0, edit_seq=seq)
    inst.pool.rescan_later(puzzle["volume"], puzzle, seq)
    inst.later(promote_settled, inst, puzzle["volume"])
    return {"puzzle": puzzle_id, "decision": apply, "edit_seq": seq}


def promote_settled(inst, volume: str) -> int:
    """Copy a volume's decisions settled beyond doubt into puzzles with a known answer (:mod:`game.crowd.settled`).

    Runs after a decision committed: a failure is logged, never the decision's error.
    """
    try:
        return settled.promote(inst, volume)
    except Exception:
        log.exception("copying the settled decisions of volume %r failed", volume)
        return 0
