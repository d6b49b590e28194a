"""An adversarial crowd: free accounts neither force nor block an edit; decisions never race.

The attack benchmark (bench/bench_attack.py) plays the same attacks against a
live server with an honest simulated crowd; these are the small, exact cases.
"""

import threading

import numpy as np
import pytest
from conftest import _copy, _opened, establish, oracle_puzzles, vote

from game.app import players
from game.app import store as st
from game.crowd import assignment, votes
from game.errors import ProofQuestError


def _answer(puzzle, edit_is_correct):
    return "yes" if edit_is_correct == (puzzle["kind"] == "merge") else "no"


def _attack(inst, attackers, answer_for) -> int:
    """Each attacker answers every puzzle they are handed (known truth included); returns votes cast."""
    cast = 0
    for attacker in attackers:
        while True:
            try:
                puzzle = assignment.next_puzzle(inst, st.player(inst.store, attacker["id"]))
            except ProofQuestError:
                break
            votes.cast_vote(inst, attacker["id"], puzzle["id"], answer_for(puzzle), 500, puzzle["ticket"])
            cast += 1
    return cast


def test_free_accounts_voting_yes_on_everything_apply_no_edit(inst):
    oracle_puzzles(inst)
    sybils = [players.create_guest(inst.store) for _ in range(6)]
    cast = _attack(inst, sybils, lambda p: "yes" if p["kind"] == "merge" else "no")  # every edit
    assert cast > 0
    assert st.edit_count(inst.store, "demo") == 0
    assert {p["state"] for p in st.puzzles(inst.store, volume="demo", gold=False)} == {"open"}


def test_free_accounts_voting_no_first_do_not_block_an_honest_crowd(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    sybils = [players.create_guest(inst.store) for _ in range(6)]
    _attack(inst, sybils, lambda p: "no" if p["kind"] == "merge" else "yes")  # against every edit
    assert {p["state"] for p in st.puzzles(inst.store, volume="demo", gold=False)} == {"open"}, \
        "rejections from accounts without a record retire nothing and send nothing to the expert queue"
    honest = [players.create_guest(inst.store) for _ in range(4)]
    establish(inst, honest, 0.8)
    index = next(i for i, p in enumerate(puzzles) if p["kind"] == "merge" and p["truth"])
    for h in honest:
        if st.puzzle(inst.store, ids[index])["state"] == "open":
            vote(inst, h["id"], ids[index], "yes")
    assert st.puzzle(inst.store, ids[index])["decision"] == 1 and st.edit_count(inst.store, "demo") == 1
    # the decision's record says whose votes counted: the honest ones, none of the sybils'
    counted = {v["player_id"]: v["counted"] for v in st.puzzle_votes(inst.store, ids[index])}
    assert {counted[s["id"]] for s in sybils if s["id"] in counted} == {0}
    assert 1 in {counted.get(h["id"]) for h in honest}
    assert st.counted_votes(inst.store, [s["id"] for s in sybils]) == 0
    assert st.counted_votes(inst.store, [h["id"] for h in honest]) == sum(counted.get(h["id"]) == 1 for h in honest)
    assert {v["counted"] for v in st.puzzle_votes(inst.store, ids[index + 1])} == {None}, "open: not decided yet"


def test_votes_before_the_introduction_steer_neither_the_hand_out_order_nor_how_many_hold_a_puzzle(inst):
    """Blocking accounts first voted on every puzzle: before their introduction (handed crowd puzzles here
    because the gold share for new players is 0) their votes must not move those puzzles up the honest
    players' queue (the priority's "close to retiring" term) nor keep all but one honest player off them (a
    puzzle is held by as many players as it still needs answers)."""
    oracle_puzzles(inst, gold_every=1000)
    inst.settings.update(GOLD_SHARE_NEW=0.0)
    honest = players.create_guest(inst.store)
    establish(inst, [honest], 0.8)

    def order():
        return [(p["id"], round(p["priority"], 9), p["answers"])
                for p in st.assignable_puzzles(inst.store, honest["id"], gold=False, min_votes=3, limit=400)]
    before = order()
    sybils = [players.create_guest(inst.store) for _ in range(4)]
    assert _attack(inst, sybils, lambda p: "no" if p["kind"] == "merge" else "yes") >= 4 * len(before)
    assert order() == before, "the same puzzles, in the same order, none counted"
    inst.settings.update(GOLD_SHARE=0.0, GOLD_SHARE_NEW=0.0)
    others = [players.create_guest(inst.store) for _ in range(2)]
    establish(inst, others, 0.8)
    handed = [assignment.next_puzzle(inst, st.player(inst.store, o["id"]))["id"] for o in others]
    assert handed == [before[0][0]] * 2, "it still wants 3 counted votes: the second player gets it too"
    vote(inst, honest["id"], handed[0], "yes")
    assert (st.puzzle(inst.store, handed[0])["counted_votes"], st.puzzle(inst.store, handed[0])["n_votes"]) == (1, 5)


def test_an_observer_cannot_tell_from_its_hand_outs_whether_a_probe_accounts_vote_counted(inst, home, tmp_path):
    # A helper had an observer account read its next puzzle before and after a probe account's vote on the top
    # crowd puzzle: the order moved only when the vote counted, so it learned whether the probe's gold answers
    # were right, and harvested 35 of 36 secret gold answers in 4.2 minutes. The same probe, past its
    # introduction, votes once counting and once not (two copies of one instance): the observer sees the same.
    oracle_puzzles(inst, gold_every=1000, more_gold=2)
    probe, observer = players.create_guest(inst.store), players.create_guest(inst.store)
    for player in (probe, observer):  # both past the introduction (the instance's gold puzzles answered)
        while not inst.assignments.introduced(inst, player["id"]):
            puzzle = assignment.next_puzzle(inst, st.player(inst.store, player["id"]))
            votes.cast_vote(inst, player["id"], puzzle["id"], "yes", 500, puzzle["ticket"])
    inst.store.close()
    seen = []
    for counts in (True, False):
        for copy in _opened(_copy(home, tmp_path / str(counts))):
            copy.settings.update(GOLD_SHARE=0.0)
            st.set_reliabilities(copy.store, {probe["id"]: (0.95, True) if counts else (0.55, False)})
            top = assignment.next_puzzle(copy, st.player(copy.store, probe["id"]))
            vote(copy, probe["id"], top["id"], "yes")
            counted = st.puzzle(copy.store, top["id"])["counted_votes"]
            order = [(p["id"], round(p["priority"], 12), p.get("answers"))
                     for p in st.assignable_puzzles(copy.store, observer["id"], gold=False, limit=400)]
            handed = [assignment.next_puzzle(copy, st.player(copy.store, observer["id"]))["id"] for _ in range(3)]
            seen.append((counted, top["id"], order, handed, st.open_split_parts(copy.store, min_belief=0.1)))
    assert (seen[0][0], seen[1][0]) == (1, 0), "the probe's vote counted in one copy only"
    assert seen[0][1:] == seen[1][1:], "what the observer is handed, and the order, are the same"
    assert any(answers == 1 for _, _, answers in seen[0][2]), "the probe's answer is in the order"
    for copy in _opened(tmp_path / "False" / "instance"):
        moved = st.puzzle(copy.store, seen[1][1])
        assert moved["belief"] > moved["score"], "a yes from a player whose votes do not count moves it too"


def test_what_a_player_is_handed_never_tells_them_whether_their_gold_answers_were_right(inst):
    # An attack harvested every secret gold answer when crowd puzzles came right after the answer that
    # established an account: one throwaway guest per gold puzzle, answering it "yes" and watching its next
    # puzzle. Hand-outs follow how many gold puzzles a player answered, right or wrong, never the standing.
    ids, puzzles = oracle_puzzles(inst, more_gold=8)
    inst.settings.update(ESTABLISHED_GOLD_ANSWERS=3, GOLD_SHARE_NEW=1.0, GOLD_SHARE=0.0)
    gold = {pid: p for pid, p in zip(ids, puzzles) if p["gold"]}
    right, wrong, veteran = (players.create_guest(inst.store) for _ in range(3))

    def handed(player):
        return assignment.next_puzzle(inst, st.player(inst.store, player["id"]))

    establish(inst, [veteran], 0.9)
    assert handed(veteran)["id"] in gold, "votes that count, no gold answered: still handed gold"
    for player, answers_right in ((right, True), (wrong, False)):
        for _ in range(3):
            puzzle = handed(player)
            truth = gold[puzzle["id"]]["truth"]
            votes.cast_vote(inst, player["id"], puzzle["id"], _answer(puzzle, truth == answers_right), 500,
                            puzzle["ticket"])
    standing = st.standings(inst.store, [right["id"], wrong["id"]])
    assert (standing[right["id"]][1], standing[wrong["id"]][1]) == (True, False)
    after = [handed(right), handed(wrong)]
    assert not any(p["id"] in gold for p in after), "both past the introduction, both handed crowd puzzles alike"
    assert after[0]["id"] == after[1]["id"], "the same puzzle: the top of the order, whoever counts"


def test_an_instance_with_fewer_secret_gold_puzzles_than_asked_still_establishes_players(inst):
    # 20 secret gold answers before a vote counts; a volume whose right edits ran out drew fewer gold puzzles:
    # answering every one of them is the introduction then, and the record is judged on them
    ids, puzzles = oracle_puzzles(inst, more_gold=4)
    gold = {pid: p for pid, p in zip(ids, puzzles) if p["gold"]}
    assert 2 < len(gold) < 20
    inst.settings.update(ESTABLISHED_GOLD_ANSWERS=20, GOLD_SHARE_NEW=1.0, GOLD_SHARE=0.0)
    player = players.create_guest(inst.store)
    for _ in gold:
        puzzle = assignment.next_puzzle(inst, st.player(inst.store, player["id"]))
        assert puzzle["id"] in gold
        votes.cast_vote(inst, player["id"], puzzle["id"], _answer(puzzle, gold[puzzle["id"]]["truth"]), 500,
                        puzzle["ticket"])
    assert st.standings(inst.store, [player["id"]])[player["id"]][1] is True
    assert assignment.next_puzzle(inst, st.player(inst.store, player["id"]))["id"] not in gold


def test_a_record_is_earned_on_secret_gold_and_guessing_earns_none(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1)  # every puzzle gold: both answers in the set
    truths = [p["truth"] for p in puzzles]
    assert 0.3 < np.mean(truths) < 0.7
    guesser, looker = players.create_guest(inst.store), players.create_guest(inst.store)
    for pid, p in zip(ids, puzzles):
        vote(inst, guesser["id"], pid, "yes")
        vote(inst, looker["id"], pid, _answer(p, p["truth"]))
    standing = st.standings(inst.store, [guesser["id"], looker["id"]])
    assert standing[looker["id"]][1] is True
    assert standing[guesser["id"]][1] is False and standing[guesser["id"]][0] < 0.65


@pytest.fixture
def clock(monkeypatch):
    """The clock deciding again reads (time.monotonic in game.crowd.votes), moved by hand: ``clock[0] += s``."""
    now = [1_000_000.0]
    monkeypatch.setattr(votes.time, "monotonic", lambda: now[0])
    return now


def _voted_before_their_records(inst, players_: int = 3, voting: int | None = None, kind: str = "merge"):
    """Hand-made puzzles, ``players_`` guests, and the first ``voting`` of them (all by default) answering a
    right crowd puzzle of ``kind`` rightly while their votes count for nothing yet; (ids, puzzles, crowd, its id)."""
    ids, puzzles = oracle_puzzles(inst, gold_every=2, more_gold=6)
    crowd = [players.create_guest(inst.store) for _ in range(players_)]
    index = next(i for i, p in enumerate(puzzles) if not p["gold"] and p["kind"] == kind and p["truth"])
    for c in crowd[:voting]:
        vote(inst, c["id"], ids[index], _answer(puzzles[index], True))
    return ids, puzzles, crowd, ids[index]


def _earn_records(inst, crowd, ids, puzzles):
    """Each player answers every secret gold puzzle right (through the vote path: their standing follows)."""
    for c in crowd:
        for pid, p in zip(ids, puzzles):
            if p["gold"]:
                vote(inst, c["id"], pid, _answer(p, p["truth"]))


def test_an_open_puzzle_is_decided_again_when_its_voters_earn_a_record(inst, clock):
    """Votes cast before their players were established count once they are: a puzzle is decided on what its
    votes count for now, not left open on a posterior from when they did not (no vote may come again: every
    player has answered it)."""
    inst.settings.update(REFIT_EVERY_VOTES=0)
    ids, puzzles, crowd, pid = _voted_before_their_records(inst)
    assert (st.puzzle(inst.store, pid)["state"], st.puzzle(inst.store, pid)["counted_votes"]) == \
        ("open", 0), "no vote counts yet"
    inst.take_standing_changed()
    assert votes.redecide(inst) == 0, "no standing changed: nothing to decide again"
    _earn_records(inst, crowd, ids, puzzles)
    assert all(e for _, e in st.standings(inst.store, [c["id"] for c in crowd]).values())
    assert st.puzzle(inst.store, pid)["state"] == "open", "no vote came since"
    told = []
    inst.notify = told.extend
    clock[0] += votes.REDECIDE_SECONDS
    assert votes.redecide(inst) == 0, "the first pass waits: a vote may come and decide it"
    assert st.puzzle(inst.store, pid)["state"] == "open"
    clock[0] += votes.REDECIDE_SECONDS
    assert votes.redecide(inst) == 1, "none came, and nobody holds it"
    decided = st.puzzle(inst.store, pid)
    assert (decided["state"], decided["decision"]) == ("retired", 1)
    assert [v["counted"] for v in st.puzzle_votes(inst.store, pid)] == [1, 1, 1]
    assert st.edit_count(inst.store, "demo") == 1
    assert sorted(n["player_id"] for n in told) == sorted(c["id"] for c in crowd)
    assert all(n["message"]["won"] and n["message"]["edited"] for n in told)
    clock[0] += votes.REDECIDE_SECONDS
    assert votes.redecide(inst) == 0, "decided once: the edit is never applied twice"
    assert st.edit_count(inst.store, "demo") == 1


def test_a_refit_decides_again_the_puzzles_whose_voters_standing_changed(inst, monkeypatch):
    """The same without calling it: after each refit (here every vote) the server decides again."""
    monkeypatch.setattr(votes, "REDECIDE_SECONDS", 0.0)  # a pass each call: no wait for the clock
    monkeypatch.setattr(votes, "REDECIDE_AT_ONCE_SECONDS", 0.0)
    inst.settings.update(REFIT_EVERY_VOTES=1)
    ids, puzzles, crowd, pid = _voted_before_their_records(inst, kind="split")
    assert st.puzzle(inst.store, pid)["state"] == "open"
    _earn_records(inst, crowd, ids, puzzles)
    decided = st.puzzle(inst.store, pid)
    assert (decided["state"], decided["decision"]) == ("retired", 1)
    assert st.edit_count(inst.store, "demo") == 1


def test_a_player_who_finds_no_puzzle_left_has_the_open_ones_decided_again(inst):
    """The end of a session: every player has answered the last open puzzle, their records have grown since,
    and no vote will come. The next player to ask for a puzzle and find none has it decided (on the
    server's worker; at once here)."""
    inst.settings.update(REFIT_EVERY_VOTES=0, GOLD_SHARE=0.0)
    ids, puzzles, crowd, pid = _voted_before_their_records(inst)
    _earn_records(inst, crowd, ids, puzzles)
    for other, p in zip(ids, puzzles):  # every other crowd puzzle is settled already
        if other != pid and not p["gold"]:
            st.set_puzzle_state(inst.store, other, "retired", decision=False, confidence=1.0)
    assert st.puzzle(inst.store, pid)["state"] == "open"
    with pytest.raises(ProofQuestError, match="no puzzle is left"):
        assignment.next_puzzle(inst, st.player(inst.store, crowd[0]["id"]))
    assert st.puzzle(inst.store, pid)["decision"] == 1 and st.edit_count(inst.store, "demo") == 1


def test_a_merge_that_waits_for_a_split_is_not_decided_off_a_vote(inst, monkeypatch):
    """A merge onto a segment with a likely open cut is not asked until the cut is settled (SPLIT_HOLD_BELIEF):
    deciding again leaves it alone too, or it would apply the merge the hold holds back."""
    monkeypatch.setattr(votes, "REDECIDE_SECONDS", 0.0)
    monkeypatch.setattr(votes, "REDECIDE_AT_ONCE_SECONDS", 0.0)
    import numpy as np
    from conftest import _location
    inst.settings.update(REFIT_EVERY_VOTES=0)
    ids, puzzles = oracle_puzzles(inst, gold_every=2, more_gold=6)
    agg = inst.agglomeration("demo")
    index = next(i for i, p in enumerate(puzzles) if not p["gold"] and p["kind"] == "merge" and p["truth"]
                 and np.count_nonzero(agg.mapping == agg.segment_of(p["anchors"][0])) >= 2)
    segment = agg.segment_of(puzzles[index]["anchors"][0])
    members = [int(sv) for sv in np.flatnonzero(agg.mapping == segment) if sv > 0]
    cut = st.add_puzzles(inst.store, "demo", [{
        "kind": "split", "anchors": [members[0], members[-1]], "supervoxels": [members[-1]],
        "segments": [int(segment)], "location": _location(inst.volumes.open("demo"), members[-1]), "score": 0.5,
        "truth": None}])[0]
    crowd = [players.create_guest(inst.store) for _ in range(3)]
    for c in crowd:
        vote(inst, c["id"], ids[index], "yes")
    _earn_records(inst, crowd, ids, puzzles)
    assert ids[index] in assignment.waiting_merges(inst)
    assert votes.redecide(inst) == votes.redecide(inst) == 0
    assert st.puzzle(inst.store, ids[index])["state"] == "open", "it waits for the cut"
    st.set_puzzle_state(inst.store, cut, "retired", decision=False, confidence=1.0)  # the cut was wrong
    assert ids[index] not in assignment.waiting_merges(inst)
    assert votes.redecide(inst) == 1, "it waited in the pass's list, and is decided once the cut is settled"
    assert st.puzzle(inst.store, ids[index])["decision"] == 1


def test_a_vote_that_comes_first_leaves_nothing_to_decide_again(inst, clock):
    """A puzzle still being voted on is decided by its votes on the standings of the moment: the pass that
    finds a vote came since its voters' standing changed leaves it alone."""
    inst.settings.update(REFIT_EVERY_VOTES=0)
    ids, puzzles, crowd, pid = _voted_before_their_records(inst, 4, voting=2)
    _earn_records(inst, crowd, ids, puzzles)
    assert votes.redecide(inst) == 0 and pid in inst.undecided
    reply = vote(inst, crowd[2]["id"], pid, "yes")["reply"]
    assert reply["retired"]["decision"] is True, "the vote decided it, counting the two before it"
    clock[0] += votes.REDECIDE_SECONDS
    assert votes.redecide(inst) == 0 and pid not in inst.undecided
    assert st.edit_count(inst.store, "demo") == 1


def test_a_puzzle_waits_redecide_seconds_for_a_vote_before_it_is_decided_again(inst, clock):
    """Passes come at most every REDECIDE_SECONDS, and a puzzle waits that long for a vote that would decide it
    on the standings of the moment (a crowd voting fast pays nothing more)."""
    inst.settings.update(REFIT_EVERY_VOTES=0)
    ids, puzzles, crowd, pid = _voted_before_their_records(inst)
    _earn_records(inst, crowd, ids, puzzles)
    assert votes.redecide(inst) == 0 and pid in inst.undecided
    clock[0] += votes.REDECIDE_SECONDS / 2
    assert votes.redecide(inst) == 0 and st.puzzle(inst.store, pid)["state"] == "open", "too soon"
    clock[0] += votes.REDECIDE_SECONDS
    assert votes.redecide(inst) == 1 and st.puzzle(inst.store, pid)["decision"] == 1


def test_only_a_standing_change_that_matters_decides_a_players_puzzles_again(inst):
    """Each secret gold answer nudges a reliability: the puzzles are decided again once whether the votes
    count flips, or once the reliability has moved RESTANDING_STEP (0.02) in all since it last counted."""
    inst.take_standing_changed()
    steps = [((0.700, True), (0.705, True)), ((0.705, True), (0.712, True)), ((0.712, True), (0.721, True)),
             ((0.721, True), (0.722, True))]
    noted = []
    for change in steps:
        inst.standing_changed({7: change})
        noted.append(bool(inst.take_standing_changed()))
    assert noted == [False, False, True, False], "0.005, 0.012, then 0.021 from 0.700; then 0.001 from 0.721"
    inst.standing_changed({8: ((0.61, False), (0.611, True))})
    inst.standing_changed({9: None})  # a suspension or its end
    inst.standing_changed({10: ((0.5, False), (0.75, False))})  # a guest whose votes count for nothing yet
    assert inst.take_standing_changed() == {8, 9}


def test_a_pass_that_fails_on_a_puzzle_asks_again_the_next_time(inst, monkeypatch):
    """A decision that fails (a lock held past its wait, say) is logged and the puzzle is kept for the next
    pass: nothing a pass took on is lost."""
    monkeypatch.setattr(votes, "REDECIDE_SECONDS", 0.0)
    monkeypatch.setattr(votes, "REDECIDE_AT_ONCE_SECONDS", 0.0)
    inst.settings.update(REFIT_EVERY_VOTES=0)
    ids, puzzles, crowd, pid = _voted_before_their_records(inst)
    _earn_records(inst, crowd, ids, puzzles)
    settle, failures = votes._settle, []

    def fail_once(*args):
        if not failures:
            failures.append(1)
            raise RuntimeError("the write failed")
        return settle(*args)
    monkeypatch.setattr(votes, "_settle", fail_once)
    assert votes.redecide(inst) == 0 and failures and pid in inst.undecided
    assert st.puzzle(inst.store, pid)["state"] == "open" and st.edit_count(inst.store, "demo") == 0
    assert votes.redecide(inst) == 1 and st.puzzle(inst.store, pid)["decision"] == 1


def test_a_suspension_is_followed_by_deciding_its_players_puzzles_again(inst, monkeypatch):
    """An admin suspends an established saboteur whose 'no' held a right edit open: without their vote the
    honest ones decide it."""
    monkeypatch.setattr(votes, "REDECIDE_SECONDS", 0.0)  # a pass each call: no wait for the clock
    monkeypatch.setattr(votes, "REDECIDE_AT_ONCE_SECONDS", 0.0)
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    honest, saboteur = [players.create_guest(inst.store) for _ in range(3)], players.create_guest(inst.store)
    admin = players.create_guest(inst.store)
    establish(inst, honest + [saboteur], 0.8)
    index = next(i for i, p in enumerate(puzzles) if p["kind"] == "merge" and p["truth"])
    vote(inst, saboteur["id"], ids[index], "no")
    for h in honest[:2]:
        vote(inst, h["id"], ids[index], "yes")
    held = st.puzzle(inst.store, ids[index])
    assert (held["state"], held["counted_votes"]) == ("open", 3), "two against one: not yet"
    from game.crowd import audit
    audit.suspend(inst, admin["id"], saboteur["id"], True)
    assert votes.redecide(inst) == votes.redecide(inst) == 0, "two counted votes are still short of MIN_VOTES"
    now = st.puzzle(inst.store, ids[index])
    assert now["counted_votes"] == 2 and now["posterior"] > held["posterior"], "the saboteur's 'no' is gone"
    vote(inst, honest[2]["id"], ids[index], "yes")
    assert st.puzzle(inst.store, ids[index])["decision"] == 1


def test_a_vote_needs_the_ticket_its_puzzle_came_with(inst):
    ids, _ = oracle_puzzles(inst)
    a, b = players.create_guest(inst.store), players.create_guest(inst.store)
    handed = assignment.next_puzzle(inst, st.player(inst.store, a["id"]))
    with pytest.raises(ProofQuestError, match="ticket"):
        votes.cast_vote(inst, b["id"], handed["id"], "yes", None, handed["ticket"])  # someone else's ticket
    other = next(i for i in ids if i != handed["id"])
    with pytest.raises(ProofQuestError, match="ticket"):
        votes.cast_vote(inst, a["id"], other, "yes", None, handed["ticket"])  # a puzzle not handed out
    votes.cast_vote(inst, a["id"], handed["id"], "yes", None, handed["ticket"])
    with pytest.raises(ProofQuestError, match="already answered"):
        votes.cast_vote(inst, a["id"], handed["id"], "yes", None, handed["ticket"])  # once
    assert st.vote_count(inst.store) == 1


def test_two_admins_deciding_at_once_settle_a_puzzle_once(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    admins = [players.register(inst.store, name, "long password", role="admin") for name in ("ada", "grace")]
    for trial, index in enumerate(i for i, p in enumerate(puzzles) if p["kind"] == "merge"):
        with inst.store.write():
            st.set_puzzle_state(inst.store, ids[index], "expert")
        barrier, results = threading.Barrier(2), {}

        def decide(admin, decision):
            barrier.wait()
            try:
                results[decision] = votes.expert_decide(inst, admin["id"], ids[index], decision)
            except ProofQuestError as exc:
                results[decision] = exc

        threads = [threading.Thread(target=decide, args=(admin, decision))
                   for admin, decision in zip(admins, ("apply", "reject"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [d for d, r in results.items() if isinstance(r, dict)]
        assert len(won) == 1, results
        row = st.puzzle(inst.store, ids[index])
        logged = [e for e in st.edits(inst.store, "demo") if e["puzzle_id"] == ids[index]]
        assert row["decision"] == (won[0] == "apply") and len(logged) == (1 if won[0] == "apply" else 0)
        if trial == 3:
            break
    replayed = inst.segmentations._replay("demo")
    assert np.array_equal(replayed.mapping, inst.agglomeration("demo").mapping)


def test_a_write_that_fails_leaves_the_segmentation_in_memory_unchanged(inst, monkeypatch):
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    index = next(i for i, p in enumerate(puzzles) if p["kind"] == "merge" and p["truth"])
    crowd = [players.create_guest(inst.store) for _ in range(4)]
    establish(inst, crowd, 0.7)
    before = np.array(inst.agglomeration("demo").mapping)
    for c in crowd[:3]:
        vote(inst, c["id"], ids[index], "yes")

    calls, add_points = [], st.add_points

    def fail_after_the_edit(*args, **kwargs):  # the voter's own points, then the retirement's bonuses
        calls.append(args)
        if len(calls) > 1:
            assert st.edit_count(inst.store, "demo") == 1, "the edit is in the log inside the transaction"
            raise RuntimeError("disk full")
        return add_points(*args, **kwargs)

    monkeypatch.setattr(st, "add_points", fail_after_the_edit)
    with pytest.raises(RuntimeError, match="disk full"):
        vote(inst, crowd[3]["id"], ids[index], "yes")
    assert np.array_equal(inst.agglomeration("demo").mapping, before)
    assert st.edit_count(inst.store, "demo") == 0 and st.puzzle(inst.store, ids[index])["state"] == "open"


def test_an_applied_edit_credits_every_player_who_voted_for_it_counted_or_not(inst):
    # Credit for counted votes alone told a probe account, on its own record page, whether its votes counted
    # (so whether its gold answers were right) as soon as the crowd applied an edit it had voted for.
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    inst.settings.update(GOLD_SHARE=0.0, GOLD_SHARE_NEW=0.0)
    crowd = [players.create_guest(inst.store) for _ in range(3)]
    probe = players.create_guest(inst.store)
    establish(inst, crowd, 0.95)
    st.set_reliabilities(inst.store, {probe["id"]: (0.55, False)})
    merge = next(pid for pid, p in zip(ids, puzzles) if p["kind"] == "merge" and p["truth"])
    vote(inst, probe["id"], merge, "yes")
    for player in crowd:
        vote(inst, player["id"], merge, "yes")
    row = st.puzzle(inst.store, merge)
    assert row["state"] == "retired" and row["decision"] == 1
    counted = {v["player_id"]: v["counted"] for v in st.puzzle_votes(inst.store, merge)}
    assert counted[probe["id"]] == 0 and all(counted[p["id"]] == 1 for p in crowd)
    credited = {p["id"]: [c["puzzle_id"] for c in st.credited_edits(inst.store, p["id"])] for p in crowd + [probe]}
    assert credited[probe["id"]] == [merge] and all(c == [merge] for c in credited.values())


def test_past_the_introduction_a_player_is_handed_gold_at_the_settling_share_by_count_alone(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1000, more_gold=8)
    gold = {pid for pid, p in zip(ids, puzzles) if p["gold"]}
    inst.settings.update(ESTABLISHED_GOLD_ANSWERS=2, SETTLING_GOLD_ANSWERS=5, GOLD_SHARE_SETTLING=1.0,
                         GOLD_SHARE_NEW=1.0, GOLD_SHARE=0.0)
    right, wrong = players.create_guest(inst.store), players.create_guest(inst.store)
    for player, answers_right in ((right, True), (wrong, False)):
        handed = []
        for _ in range(6):
            puzzle = assignment.next_puzzle(inst, st.player(inst.store, player["id"]))
            handed.append(puzzle["id"] in gold)
            truth = next(p["truth"] for pid, p in zip(ids, puzzles) if pid == puzzle["id"])
            votes.cast_vote(inst, player["id"], puzzle["id"], _answer(puzzle, truth == answers_right), 500,
                            puzzle["ticket"])
        assert handed == [True] * 5 + [False], "gold until 5 gold answers, right or wrong alike, then crowd"
