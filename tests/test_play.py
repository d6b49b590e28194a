"""The game's rules without a web server: assignment, votes, consensus edits, moot puzzles, experts."""

import random
import time

import pytest
from conftest import establish, oracle_puzzles, vote

from game.app import pipeline, players
from game.app import store as st
from game.crowd import assignment, reliability, reports, votes
from game.errors import ProofQuestError
from game.puzzles.edit import PuzzleEdit


def _crowd(inst, n):
    """Players with an established record at reliability 0.7 (four agreeing reach APPLY_CONFIDENCE 0.97)."""
    crowd = [players.create_guest(inst.store) for _ in range(n)]
    establish(inst, crowd, 0.7)
    return crowd


def _answer_everything(inst, player) -> list[int]:
    """One player asks for puzzles and answers 'unsure' until none is left; the puzzles in order."""
    order = []
    while True:
        try:
            p = assignment.next_puzzle(inst, st.player(inst.store, player["id"]))
        except ProofQuestError:
            return order
        order.append(p["id"])
        vote(inst, player["id"], p["id"], "unsure")


def _answer(puzzle, truth):
    yes_means_edit = puzzle["kind"] == "merge"
    return "yes" if truth == yes_means_edit else "no"


def test_a_player_never_gets_a_puzzle_twice_and_never_sees_its_truth(inst):
    ids, _ = oracle_puzzles(inst)
    player = _crowd(inst, 1)[0]
    seen = set()
    for _ in range(len(ids)):
        p = assignment.next_puzzle(inst, st.player(inst.store, player["id"]), rng=random.Random(1))
        assert p["id"] not in seen
        assert "truth" not in p and "gold" not in p and p["question"].endswith("?")
        seen.add(p["id"])
        vote(inst, player["id"], p["id"], "unsure", 500)
    with pytest.raises(ProofQuestError, match="no puzzle is left"):
        assignment.next_puzzle(inst, st.player(inst.store, player["id"]))


def test_consensus_applies_a_true_merge_once_with_provenance(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    index = next(i for i, p in enumerate(puzzles) if p["kind"] == "merge" and p["truth"])
    pid, puzzle = ids[index], puzzles[index]
    crowd = _crowd(inst, 6)
    # new players start at reliability 0.7: applying an edit takes four who agree (APPLY_CONFIDENCE 0.97)
    replies = [vote(inst, c["id"], pid, "yes", 800)["reply"] for c in crowd[:4]]
    assert all(r["retired"] is None for r in replies[:3])
    assert replies[-1]["retired"]["decision"] is True and replies[-1]["retired"]["won"] is True
    assert st.puzzle(inst.store, pid)["confidence"] >= inst.consensus.apply_confidence
    assert "confidence" not in replies[-1]["retired"], "the posterior tells how much the voter's vote weighed"
    agg = inst.agglomeration("demo")
    a, b = puzzle["anchors"]
    assert agg.segment_of(a) == agg.segment_of(b)
    log = st.edits(inst.store, "demo")
    assert len(log) == 1 and log[0]["puzzle_id"] == pid and log[0]["kind"] == "merge"
    assert sorted(v["player"] for v in log[0]["provenance"]["votes"]) == sorted(c["id"] for c in crowd[:4])
    # a vote on a retired puzzle is refused, earns nothing and never edits again
    with pytest.raises(ProofQuestError, match="was decided"):
        vote(inst, crowd[4]["id"], pid, "yes", 800)
    assert st.player(inst.store, crowd[4]["id"])["points"] == 0
    assert st.edit_count(inst.store, "demo") == 1 and len(st.puzzle_votes(inst.store, pid)) == 4
    assert st.puzzle(inst.store, pid)["state"] == "retired"


def test_an_acknowledged_vote_survives_a_restart(inst, home):
    ids, _ = oracle_puzzles(inst)
    crowd = _crowd(inst, 2)
    vote(inst, crowd[0]["id"], ids[0], "yes", 100)
    inst.store.close()
    from game.app.instance import Instance
    again = Instance(home, inst.settings)
    assert [v["player_id"] for v in st.puzzle_votes(again.store, ids[0])] == [crowd[0]["id"]]


def test_bad_votes_are_refused_with_clear_errors(inst):
    ids, _ = oracle_puzzles(inst)
    player = _crowd(inst, 1)[0]
    with pytest.raises(ProofQuestError, match="no puzzle 999999"):
        vote(inst, player["id"], 999999, "yes")
    with pytest.raises(ProofQuestError, match="unknown answer"):
        vote(inst, player["id"], ids[0], "maybe")
    with pytest.raises(ProofQuestError, match="integer id"):
        vote(inst, player["id"], {"$ne": 1}, "yes")
    for ticket, message in ((None, "no valid ticket"), ("123.abc", "no valid ticket"),
                            (assignment.issue_ticket(inst.ticket_key, player["id"] + 1, ids[0]), "no valid ticket"),
                            (assignment.issue_ticket(inst.ticket_key, player["id"], ids[1]), "no valid ticket"),
                            (assignment.issue_ticket(inst.ticket_key, player["id"], ids[0], now=1e9), "too long ago")):
        with pytest.raises(ProofQuestError, match=message):
            votes.cast_vote(inst, player["id"], ids[0], "yes", None, ticket)
    assert st.vote_count(inst.store) == 0 and st.player(inst.store, player["id"])["points"] == 0
    vote(inst, player["id"], ids[0], "yes")
    with pytest.raises(ProofQuestError, match="already answered"):
        vote(inst, player["id"], ids[0], "no")
    assert st.vote_count(inst.store) == 1


def test_a_puzzle_made_moot_by_an_earlier_edit_is_never_shown(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    index = next(i for i, p in enumerate(puzzles) if p["kind"] == "merge" and p["truth"])
    twin = dict(puzzles[index], anchors=list(reversed(puzzles[index]["anchors"])))
    twin_id = st.add_puzzles(inst.store, "demo", [twin])[0]
    for c in _crowd(inst, 4):
        vote(inst, c["id"], ids[index], "yes")
    shown = _answer_everything(inst, _crowd(inst, 1)[0])
    assert twin_id not in shown
    assert st.puzzle(inst.store, twin_id)["state"] == "moot"


def test_split_votes_go_to_the_expert_queue_and_an_admin_settles_them(inst):
    inst.settings.update(MIN_VOTES=2, MAX_VOTES=4)
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    index = next(i for i, p in enumerate(puzzles) if p["kind"] == "split")
    crowd = _crowd(inst, 4)
    for c, answer in zip(crowd, ["yes", "no", "yes", "no"]):
        vote(inst, c["id"], ids[index], answer)
    assert [p["id"] for p in votes.expert_queue(inst)] == [ids[index]]
    admin = players.register(inst.store, "admin", "admin password", role="admin")
    outcome = votes.expert_decide(inst, admin["id"], ids[index], "apply")
    assert outcome["edit_seq"] == 0
    agg = inst.agglomeration("demo")
    moved = puzzles[index]["supervoxels"]
    assert len({agg.segment_of(sv) for sv in moved}) == 1
    assert agg.segment_of(moved[0]) != agg.segment_of(puzzles[index]["anchors"][0])
    with pytest.raises(ProofQuestError, match="not waiting"):
        votes.expert_decide(inst, admin["id"], ids[index], "apply")


def test_secret_gold_shows_nothing_but_builds_the_players_standing(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1)
    player = players.create_guest(inst.store)
    replies = []
    for i in range(inst.consensus.established_gold_answers):
        replies.append(vote(inst, player["id"], ids[i], _answer(puzzles[i], puzzles[i]["truth"]))["reply"])
    assert all(r["feedback"] is None and r["points"] == inst.scoring.effort and r["streak"] == 0 for r in replies)
    reliability, established = st.standings(inst.store, [player["id"]])[player["id"]]
    assert established and reliability > 0.6
    assert "reliability" not in st.player(inst.store, player["id"]), "players are never told their weight"
    # a wrong answer looks exactly like a right one, and lowers the standing
    wrong = vote(inst, player["id"], ids[5], _answer(puzzles[5], not puzzles[5]["truth"]))["reply"]
    assert wrong["feedback"] is None and wrong["points"] == inst.scoring.effort
    assert st.standings(inst.store, [player["id"]])[player["id"]][0] < reliability


def test_teach_puzzles_show_their_outcome_and_never_count_toward_standing(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1, teach=True)
    player = players.create_guest(inst.store)
    right = vote(inst, player["id"], ids[0], _answer(puzzles[0], puzzles[0]["truth"]))["reply"]
    assert right["feedback"]["correct"] is True and right["points"] > inst.scoring.effort
    wrong = vote(inst, player["id"], ids[1], _answer(puzzles[1], not puzzles[1]["truth"]))["reply"]
    assert wrong["feedback"] == {"correct": False, "answer": _answer(puzzles[1], puzzles[1]["truth"]),
                                 "accuracy": 0.5}
    for i in range(2, 8):
        vote(inst, player["id"], ids[i], _answer(puzzles[i], puzzles[i]["truth"]))
    assert st.standings(inst.store, [player["id"]])[player["id"]] == (None, False), "harvestable: no weight"


def test_crowd_decisions_improve_the_segmentation(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    before = pipeline.evaluate_volume(inst, "demo")
    crowd = _crowd(inst, 4)
    for pid, p in zip(ids, puzzles):
        for c in crowd:
            if st.puzzle(inst.store, pid)["state"] == "open":
                vote(inst, c["id"], pid, _answer(p, p["truth"]))
    after = pipeline.evaluate_volume(inst, "demo")
    assert after["adapted_rand_error"] < before["adapted_rand_error"]
    assert after["edge_accuracy"] > before["edge_accuracy"]
    assert reliability.refit_reliabilities(inst) == 4


def test_records_and_leaderboards_follow_the_votes(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    crowd = _crowd(inst, 3)
    for c in crowd:
        vote(inst, c["id"], ids[0], _answer(puzzles[0], puzzles[0]["truth"]))
    record = reports.player_record(inst, crowd[0]["id"])
    assert record["votes"] == 1 and record["points_history"][-1]["points"] == record["player"]["points"] > 0
    board = reports.leaderboard(inst, "all")
    assert {r["id"] for r in board} == {c["id"] for c in crowd}
    assert reports.game_stats(inst)["votes"] == 3


def test_players_playing_at_once_spread_over_puzzles(inst):
    inst.settings.update(MIN_VOTES=1, MIN_VOTES_TO_REJECT=1, GOLD_SHARE_NEW=0.0, GOLD_SHARE=0.0)
    oracle_puzzles(inst, gold_every=1000)
    a, b = _crowd(inst, 2)
    first = assignment.next_puzzle(inst, a)
    assert assignment.next_puzzle(inst, b)["id"] != first["id"]
    assert assignment.next_puzzle(inst, a)["id"] == first["id"], "a player asking again keeps the puzzle they hold"


def _waiting_merge(inst):
    """Oracle puzzles plus a merge puzzle from a segment that an open split puzzle suspects."""
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    agg = inst.agglomeration("demo")
    split = next(p for p in puzzles if p["kind"] == "split")
    parent = agg.segment_of(split["supervoxels"][0])
    from game.segmentation.rag import RAG
    rag = RAG.from_arrays(inst.volumes.open("demo").load_side("rag"))
    edge = next(e for e in range(len(rag.u)) if agg.segment_of(int(rag.u[e])) == parent
                and agg.segment_of(int(rag.v[e])) != parent)
    waiting = st.add_puzzles(inst.store, "demo", [{
        "kind": "merge", "anchors": [int(rag.u[edge]), int(rag.v[edge])], "supervoxels": [],
        "segments": [parent, agg.segment_of(int(rag.v[edge]))], "location": split["location"],
        "score": 0.5, "truth": False, "value": 1e9}])[0]  # first by priority (in either PUZZLE_ORDER)
    return ids, puzzles, waiting


def test_only_a_cut_that_may_well_be_right_holds_merges_back(inst):
    ids, puzzles, waiting = _waiting_merge(inst)
    agg = inst.agglomeration("demo")
    split_id, split = next((i, p) for i, p in zip(ids, puzzles) if p["kind"] == "split")
    part = split["supervoxels"][0]  # the suspects are a mask over supervoxels
    inst.settings.update(SPLIT_HOLD_BELIEF=0.0)
    suspects = assignment._suspected_mergers(inst, {"demo": agg})["demo"]
    assert suspects[part] and assignment._waits(st.puzzle(inst.store, waiting), suspects)
    # the cut's probability: the detector's score, moved by the answers it got (counted or not: seen by all)
    with inst.store.write() as db:
        db.conn.execute("UPDATE puzzles SET score = 0.05, posterior = NULL WHERE kind = 'split'")
    inst.settings.update(SPLIT_HOLD_BELIEF=0.1)
    suspects = assignment._suspected_mergers(inst, {"demo": agg})["demo"]
    assert not suspects[part] and not assignment._waits(st.puzzle(inst.store, waiting), suspects)
    with inst.store.write() as db:
        db.conn.execute("UPDATE puzzles SET posterior = 0.4 WHERE id = ?", (split_id,))
    assert not assignment._suspected_mergers(inst, {"demo": agg})["demo"][part], "the posterior is not read"
    with inst.store.write() as db:  # the score moved by answers (counted or not: seen by all)
        db.conn.execute("UPDATE puzzles SET belief = 0.3 WHERE id = ?", (split_id,))
    assert assignment._suspected_mergers(inst, {"demo": agg})["demo"][part]


def test_a_crowd_at_capacity_doubles_up_before_a_merge_that_waits(inst):
    inst.settings.update(GOLD_SHARE_NEW=0.0, GOLD_SHARE=0.0, MIN_VOTES=1, MIN_VOTES_TO_REJECT=1, SPLIT_HOLD_BELIEF=0.0)
    ids, _, waiting = _waiting_merge(inst)
    agg = inst.agglomeration("demo")
    suspects = assignment._suspected_mergers(inst, {"demo": agg})["demo"]
    waits = {i for i in ids + [waiting] if assignment._waits(st.puzzle(inst.store, i), suspects)}
    free = set(ids) - waits
    assert waiting in waits and free
    crowd = _crowd(inst, len(ids) + 1)  # more players at once than puzzles that do not wait
    held = [assignment.next_puzzle(inst, st.player(inst.store, c["id"]))["id"] for c in crowd]
    assert set(held[:len(free)]) == free  # spread over them first ...
    assert set(held) == free  # ... then doubled up on them: no waiting merge while they are open


def test_a_merge_onto_a_suspected_merger_waits_for_the_split_puzzle(inst):
    inst.settings.update(GOLD_SHARE_NEW=0.0, GOLD_SHARE=0.0, SPLIT_HOLD_BELIEF=0.0)
    ids, puzzles, waiting = _waiting_merge(inst)
    order = _answer_everything(inst, _crowd(inst, 1)[0])
    # the first puzzle by priority, yet handed out after every puzzle that does not wait ...
    assert waiting in order
    assert all(st.puzzle(inst.store, i)["kind"] == "merge" for i in order[order.index(waiting):])
    # ... and once the split puzzle is settled (no: one neurite), it no longer waits
    newcomer = _crowd(inst, 1)[0]
    split_ids = [i for i, q in zip(ids, puzzles) if q["kind"] == "split"]
    with inst.store.write():
        for i in split_ids:
            st.set_puzzle_state(inst.store, i, "retired", decision=False)
    assert assignment.next_puzzle(inst, st.player(inst.store, newcomer["id"]))["id"] == waiting


def test_edit_stake_is_the_share_of_same_segment_pairs_the_edit_moves(inst):
    import numpy as np
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    vol = inst.volumes.open("demo")
    mapping = np.asarray(inst.agglomeration("demo").mapping)
    labels = mapping[vol.read("supervoxels")]  # the segmentation, voxel by voxel
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    total = float((sizes.astype(float) ** 2).sum())
    for pid, puzzle in zip(ids, puzzles):
        row = st.puzzle(inst.store, pid)
        if puzzle["kind"] == "merge":
            a, b = (int(mapping[sv]) for sv in puzzle["anchors"])
            expected = 2.0 * sizes[a] * sizes[b] / total
        else:
            moved = np.isin(vol.read("supervoxels"), puzzle["supervoxels"]).sum()
            parent = int(mapping[puzzle["supervoxels"][0]])
            expected = 2.0 * moved * (sizes[parent] - moved) / total
        stake = PuzzleEdit.of(row).stake(inst.agglomeration("demo"), inst.supervoxel_sizes("demo"))
        assert stake == pytest.approx(expected)


def test_a_big_edit_waits_for_more_votes_than_a_small_one(inst):
    inst.settings.update(BIG_EDIT_STAKE=0.0)  # every edit is big here
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    index = next(i for i, p in enumerate(puzzles) if p["kind"] == "merge" and p["truth"])
    crowd = _crowd(inst, 9)
    # four new players (reliability 0.7) apply a small edit (APPLY_CONFIDENCE 0.97); a big one needs seven
    replies = [vote(inst, c["id"], ids[index], "yes")["reply"] for c in crowd[:7]]
    assert [r["retired"] is not None for r in replies] == [False] * 6 + [True]
    assert st.puzzle(inst.store, ids[index])["confidence"] >= 0.995
    assert st.edit_count(inst.store, "demo") == 1


def test_sleepers_with_a_long_record_cannot_outvote_the_crowd_on_a_big_edit(inst):
    # three accounts that earned a reliability of 0.95 (sleepers) all support a wrong merge, then honest
    # players at 0.75 oppose it; every edit is big here
    inst.settings.update(BIG_EDIT_STAKE=0.0)
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    wrong = [ids[i] for i, p in enumerate(puzzles) if p["kind"] == "merge" and not p["truth"]][:2]
    sleepers, honest = _crowd(inst, 3), _crowd(inst, 6)
    establish(inst, sleepers, 0.95)
    establish(inst, honest, 0.75)
    # uncapped (BIG_RELIABILITY_CAP at the ceiling), their third vote applies it: 3 x logit(0.95) = 8.8
    inst.settings.update(BIG_RELIABILITY_CAP=inst.settings["RELIABILITY_CEILING"])
    replies = [vote(inst, s["id"], wrong[0], "yes")["reply"] for s in sleepers]
    assert replies[-1]["retired"] == {"decision": True, "won": True}
    assert st.puzzle(inst.store, wrong[0])["confidence"] == pytest.approx(1.0, abs=1e-3)
    assert [e["puzzle_id"] for e in st.edits(inst.store, "demo")] == [wrong[0]]
    # each vote on a big edit weighs at most one at 0.8 (the default): three such votes (4.2, with the score's
    # prior 4.4) are not enough, and six honest players (1.1 each) reject it
    inst.settings.update(BIG_RELIABILITY_CAP=0.8)
    replies = [vote(inst, s["id"], wrong[1], "yes")["reply"] for s in sleepers]
    assert [r["retired"] for r in replies] == [None] * 3
    assert st.puzzle(inst.store, wrong[1])["state"] == "open"
    replies = [vote(inst, h["id"], wrong[1], "no")["reply"] for h in honest]
    assert replies[-1]["retired"]["decision"] is False and [r["retired"] for r in replies[:-1]] == [None] * 5
    assert [e["puzzle_id"] for e in st.edits(inst.store, "demo")] == [wrong[0]]
    # nor can two of them reject a right merge that an honest player supports
    right = next(ids[i] for i, p in enumerate(puzzles) if p["kind"] == "merge" and p["truth"])
    replies = [vote(inst, p["id"], right, answer)["reply"] for p, answer in zip(
        [sleepers[0], honest[0], sleepers[1]], ["no", "yes", "no"])]
    assert [r["retired"] for r in replies] == [None] * 3
    # (uncapped, the next vote would leave it rejected, even one for it)
    inst.settings.update(BIG_RELIABILITY_CAP=inst.settings["RELIABILITY_CEILING"])
    assert vote(inst, honest[1]["id"], right, "yes")["reply"]["retired"]["decision"] is False


def test_a_puzzle_that_retired_is_never_turned_moot(inst):
    ids, _ = oracle_puzzles(inst, gold_every=1000)
    with inst.store.write():
        st.set_puzzle_state(inst.store, ids[0], "retired", decision=True, edit_seq=0)
    assert not st.mark_moot(inst.store, ids[0])
    assert (st.puzzle(inst.store, ids[0])["state"], st.puzzle(inst.store, ids[0])["decision"]) == ("retired", 1)
    assert st.mark_moot(inst.store, ids[1]) and st.puzzle(inst.store, ids[1])["state"] == "moot"


def test_reading_the_best_few_puzzles_first_hands_out_what_reading_them_all_would(inst):
    inst.settings.update(GOLD_SHARE_NEW=0.0, GOLD_SHARE=0.0, MIN_VOTES=2, MIN_VOTES_TO_REJECT=2, SPLIT_HOLD_BELIEF=0.0)
    ids, _, waiting = _waiting_merge(inst)
    assert len(ids) > assignment.FIRST_LOOK
    crowd = _crowd(inst, 30)
    rng = random.Random(3)

    def both(player):  # what reading every candidate at once gives, and what next_puzzle hands out
        rows = st.assignable_puzzles(inst.store, player["id"], gold=False, min_votes=2, limit=assignment.LOOK)
        whole, _ = assignment._first_free(inst, player["id"], rows, time.time(), assignment._suspected_mergers(inst))
        got = assignment.next_puzzle(inst, st.player(inst.store, player["id"]))
        return [r["id"] for r in rows], whole[0]["id"], got["id"]

    reached = set()
    for c in crowd + crowd[:10]:  # a crowd holding more and more of the best puzzles, some asking twice
        if rng.random() < 0.3:  # ... and some answering what they hold
            vote(inst, c["id"], rng.choice(ids), "unsure")
        order, whole, got = both(c)
        assert got == whole
        reached.add(order.index(got))
    assert max(reached) >= assignment.FIRST_LOOK, "the crowd held every one of the best few at some point"
    # the best few held by as many as they need but the merge that waits (first of all): one further down,
    # not the merge
    inst.assignments = assignment.Assignments(secret=lambda: inst.picture_secret)
    order, _, _ = both(_crowd(inst, 1)[0])
    assert order[0] == waiting
    inst.assignments = assignment.Assignments(secret=lambda: inst.picture_secret)
    for pid in order[1:assignment.FIRST_LOOK]:
        for someone in (-1, -2):
            inst.assignments.hand_out(pid, someone)
    order, whole, got = both(_crowd(inst, 1)[0])
    assert got == whole and got not in order[:assignment.FIRST_LOOK]


def test_a_decision_weighs_every_ballot_of_the_puzzle_as_its_votes_say(inst):
    from game.crowd import consensus as cs
    inst.settings.update(MIN_VOTES=50, MAX_VOTES=60, BIG_MAX_VOTES=60, GOLD_SHARE_NEW=0.0, GOLD_SHARE=0.0)
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    crowd = _crowd(inst, 5) + [players.create_guest(inst.store) for _ in range(2)]  # two without a record
    with inst.store.write() as db:
        db.conn.execute("UPDATE players SET reliability = NULL WHERE id = ?", (crowd[1]["id"],))
    split = next(i for i, p in zip(ids, puzzles) if p["kind"] == "split")
    for pid in (ids[0], split):
        for k, c in enumerate(crowd):
            vote(inst, c["id"], pid, ("yes", "no", "unsure", "yes")[k % 4])
        puzzle, unknown = st.puzzle(inst.store, pid), inst.consensus.reliability_prior_mean
        ballots = st.puzzle_ballots(inst.store, pid)
        assert len(ballots) == len(crowd)
        assert votes._ballots(inst, puzzle) == ([cs.vote_value(puzzle["kind"], b["answer"]) for b in ballots],
                                                [b["reliability"] or unknown for b in ballots],
                                                [bool(b["counted"]) for b in ballots])
    assert st.puzzle_ballot_columns(inst.store, 10**9) == ((), (), (), ())


def test_a_merge_that_waits_is_not_handed_out_while_one_that_does_not_wait_is_open(inst, monkeypatch):
    inst.settings.update(GOLD_SHARE_NEW=0.0, GOLD_SHARE=0.0, MIN_VOTES=2, MIN_VOTES_TO_REJECT=2, SPLIT_HOLD_BELIEF=0.0)
    ids, _, waiting = _waiting_merge(inst)
    second = st.add_puzzles(inst.store, "demo", [{**st.puzzle(inst.store, waiting), "key": "another"}])[0]
    player = _crowd(inst, 1)[0]
    order = [r["id"] for r in st.assignable_puzzles(inst.store, player["id"], gold=False, min_votes=2)]
    assert order[:2] == [waiting, second]
    for someone in (-1, -2):  # the best puzzle that does not wait, held by as many as it needs
        inst.assignments.hand_out(order[2], someone)
    # with windows of one and two puzzles, the window of every open puzzle holds only the merges that wait
    monkeypatch.setattr(assignment, "FIRST_LOOK", 1)
    monkeypatch.setattr(assignment, "LOOK", 2)
    assert assignment.next_puzzle(inst, st.player(inst.store, player["id"]))["id"] in order[2:]


def test_a_player_still_in_the_introduction_gets_the_end_of_the_order(inst):
    inst.settings.update(GOLD_SHARE_NEW=0.0, GOLD_SHARE=0.0, SPLIT_HOLD_BELIEF=0.5, PUZZLE_ORDER="value")
    ids, puzzles = oracle_puzzles(inst, gold_every=1000, more_gold=4)
    with inst.store.write() as db:  # no cut holds a merge back, so the order alone decides
        db.conn.execute("UPDATE puzzles SET score = 0.05 WHERE kind = 'split'")
    newcomer, regular = players.create_guest(inst.store), _crowd(inst, 1)[0]
    # past the introduction: ESTABLISHED_GOLD_ANSWERS (2 here) secret gold answers, right or wrong. Established or
    # not, a player in it is handed puzzles as one whose votes do not count yet (a hand-out never shows a standing)
    for pid in [i for i, p in zip(ids, puzzles) if p["gold"]][:2]:
        vote(inst, regular["id"], pid, "yes")
    order = [r["id"] for r in st.assignable_puzzles(inst.store, regular["id"], gold=False, order="value",
                                                    min_votes=inst.consensus.min_votes, limit=1000)]
    assert len(order) > 2
    # their answers weigh nothing: they take the end, and leave the best puzzles' voters to those that count
    assert assignment.next_puzzle(inst, st.player(inst.store, newcomer["id"]))["id"] == order[-1]
    assert assignment.next_puzzle(inst, st.player(inst.store, regular["id"]))["id"] == order[0]
