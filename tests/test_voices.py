"""One record replayed by many accounts: the copies are found by how often they agree, and speak as one.

bench/bench_attack.py --replay plays the attack against a live server beside an honest crowd; these are the
small, exact cases: the test between accounts, a voice's weight, and what happens to the decisions copies made.
"""

import random

import pytest
from conftest import _settings, establish, oracle_puzzles, vote

from game.app import players
from game.app import store as st
from game.app.instance import Instance
from game.crowd import consensus as cs
from game.crowd import reliability, voices


def _crowd(seed: int, copies: int = 3, honest: int = 20, puzzles: int = 60, table_accuracy: float = 0.85):
    """Answers to the same puzzles: ``copies`` accounts replaying one table (right at ``table_accuracy``) and
    ``honest`` independent players at 0.8 whose mistakes cluster: right always on half the puzzles, at 0.6 on
    the other half (hard puzzles most players get wrong together)."""
    rng = random.Random(seed)
    truth = [rng.random() < 0.5 for _ in range(puzzles)]
    table = [t if rng.random() < table_accuracy else not t for t in truth]
    votes, rel = [], {}
    for p in range(1, copies + 1):
        votes += [(p, q, table[q]) for q in range(puzzles)]
        rel[p] = table_accuracy
    for p in range(100, 100 + honest):
        votes += [(p, q, t if q % 2 == 0 or rng.random() < 0.6 else not t) for q, t in enumerate(truth)]
        rel[p] = 0.8
    return votes, rel


@pytest.mark.parametrize("seed", range(5))
def test_copies_of_one_table_share_a_voice_and_independent_players_do_not(seed):
    votes, rel = _crowd(seed)
    found = voices.voices(voices.pair_evidence(votes, rel), threshold=9.2)
    assert found == {1: 1, 2: 1, 3: 1}, "the three copies are one voice, and no honest player is in any"


def test_evidence_needs_shared_answers_and_grows_with_them():
    votes, rel = _crowd(0, copies=2, honest=0)
    few = voices.pair_evidence([v for v in votes if v[1] < 10], rel)[(1, 2)]
    many = voices.pair_evidence(votes, rel)[(1, 2)]
    assert few[:2] == (10, 10) and many[:2] == (60, 60)
    assert few[2] < 9.2 <= many[2], "ten identical answers prove little; sixty do"
    # players who never answered the same puzzle are no pair at all
    assert voices.pair_evidence([(1, 1, True), (2, 2, True)], {1: 0.9, 2: 0.9}) == {}


def test_a_voice_counts_as_one_vote():
    r = [0.9, 0.9, 0.9, 0.8]
    answers, rel, counted = voices.one_voice([1, 1, 1, -1], r, [7, 7, 7, None], [True] * 4)
    assert counted == [True, False, False, True] and answers[0] == 1 and answers[3] == -1
    assert rel[0] == pytest.approx(0.9) and rel[3] == 0.8, "three identical votes weigh as one of them"
    # a voice divided against itself says nothing; a vote that does not count is left out of its voice
    answers, rel, counted = voices.one_voice([1, -1, 1], [0.9, 0.9, 0.9], [7, 7, 7], [True, True, False])
    assert answers[:2] == [0, -1] and counted == [True, False, False] and rel[0] == pytest.approx(0.5)
    # no voice with two counted votes: unchanged
    assert voices.one_voice([1, 1], [0.9, 0.7], [7, None], [True, True]) == ([1, 1], [0.9, 0.7], [True, True])
    # as a posterior: three copies at 0.9 move it as one vote at 0.9 does
    settings = cs.ConsensusSettings()
    answers, rel, counted = voices.one_voice([1, 1, 1], [0.9] * 3, [7, 7, 7], [True] * 3)
    three = cs.decide(answers, rel, 0.5, settings, counted=counted)
    one = cs.decide([1], [0.9], 0.5, settings)
    assert three.posterior == pytest.approx(one.posterior) and three.votes == one.votes == 1


@pytest.fixture
def inst_voices(home):
    """An instance whose voice test fires after a few shared answers (the default needs dozens)."""
    instance = Instance(home, _settings(home, VOICE_EVIDENCE=2.0))
    yield instance
    instance.store.close()


def test_copies_that_forced_an_edit_share_a_voice_and_the_edit_is_reverted(inst_voices):
    inst = inst_voices
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    wrong = [i for i, p in zip(ids, puzzles) if p["kind"] == "merge" and not p["truth"]]
    sybils = [players.create_guest(inst.store) for _ in range(3)]
    establish(inst, sybils, 0.9)
    for s in sybils:  # the same answers everywhere: every edit, right or wrong
        for pid, p in zip(ids, puzzles):
            if st.puzzle(inst.store, pid)["state"] == "open":
                vote(inst, s["id"], pid, "yes" if p["kind"] == "merge" else "no")
    forced = [pid for pid in wrong if st.puzzle(inst.store, pid)["decision"] == 1]
    assert forced, "three established accounts agreeing force wrong merges"
    edits_before = st.edit_count(inst.store, "demo")
    segments_before = inst.agglomeration("demo").n_segments
    points_before = {s["id"]: st.player(inst.store, s["id"])["points"] for s in sybils}
    paid = {s["id"]: inst.store.scalar("SELECT COALESCE(SUM(points), 0) FROM point_events WHERE player_id = ? AND"
                                       " reason = 'consensus' AND puzzle_id IN (%s)" % ",".join(map(str, forced)),
                                       (s["id"],)) for s in sybils}
    assert all(paid.values()), "they were paid for agreeing with the decisions they forced"

    changed = reliability.refresh_voices(inst)
    assert changed == {s["id"] for s in sybils}
    assert {r["id"]: r["voice"] for r in inst.store.query("SELECT id, voice FROM players WHERE voice IS NOT NULL")} \
        == {s["id"]: min(x["id"] for x in sybils) for s in sybils}
    for pid in forced:  # one voice at 0.9 decides no merge alone: reopened, its edit reverted
        p = st.puzzle(inst.store, pid)
        assert p["state"] == "open" and p["decision"] is None and p["edit_seq"] is None
        assert not any(v["counted"] for v in st.puzzle_votes(inst.store, pid))
    log = st.edit_log(inst.store, "demo")
    reverts = [r for r in log[edits_before:] if r["kind"] == "undo"]
    assert len(reverts) >= len(forced) and all(r["provenance"]["source"] == "revert" for r in reverts)
    assert inst.agglomeration("demo").n_segments > segments_before, "the forced merges are undone in memory too"
    for s in sybils:  # what the undone decisions paid is taken back
        assert st.player(inst.store, s["id"])["points"] <= points_before[s["id"]] - paid[s["id"]]

    # the honest crowd decides the reopened puzzles as if one of the copies had voted alone
    honest = [players.create_guest(inst.store) for _ in range(6)]
    establish(inst, honest, 0.8)
    pid = forced[0]
    for h in honest:
        if st.puzzle(inst.store, pid)["state"] == "open":
            vote(inst, h["id"], pid, "no")
    p = st.puzzle(inst.store, pid)
    assert p["state"] == "retired" and p["decision"] == 0

    # checked again with nothing new: nothing changes
    assert reliability.refresh_voices(inst) == set()


def test_independent_players_keep_their_own_voices_and_their_decisions(inst_voices):
    inst = inst_voices
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    crowd = [players.create_guest(inst.store) for _ in range(4)]
    establish(inst, crowd, 0.8)
    rng = random.Random(3)
    for h in crowd:  # each right at about 0.8, each on their own
        for pid, p in zip(ids, puzzles):
            if st.puzzle(inst.store, pid)["state"] == "open":
                right = "yes" if p["truth"] == (p["kind"] == "merge") else "no"
                vote(inst, h["id"], pid, right if rng.random() < 0.8 else {"yes": "no", "no": "yes"}[right])
    decided = {pid: (st.puzzle(inst.store, pid)["state"], st.puzzle(inst.store, pid)["decision"]) for pid in ids}
    assert reliability.refresh_voices(inst) == set()
    assert decided == {pid: (st.puzzle(inst.store, pid)["state"], st.puzzle(inst.store, pid)["decision"])
                       for pid in ids}


def test_the_check_can_be_turned_off(home):
    inst = Instance(home, _settings(home, VOICE_EVIDENCE=0))
    try:
        a, b = players.create_guest(inst.store), players.create_guest(inst.store)
        st.set_voices(inst.store, {a["id"]: a["id"], b["id"]: a["id"]})  # voices found before it was turned off
        assert reliability.refresh_voices(inst) == {a["id"], b["id"]}
        assert inst.store.query("SELECT id FROM players WHERE voice IS NOT NULL") == []
    finally:
        inst.store.close()


def test_the_admin_sees_who_answers_as_one(inst):
    from game.crowd import audit
    a, b, c = (players.create_guest(inst.store) for _ in range(3))
    st.set_voices(inst.store, {a["id"]: a["id"], b["id"]: a["id"]})
    report = {r["id"]: r for r in audit.player_report(inst)}
    assert report[a["id"]]["patterns"] == [f"answers as one with {b['username']}: their votes count as one"]
    assert report[b["id"]]["voice"] == a["id"] and report[c["id"]]["patterns"] == []


def test_the_check_does_not_wait_behind_the_rescans(inst, monkeypatch):
    import threading

    from game.concurrency import Worker
    inst.worker, inst.checker = Worker("after-decisions"), Worker("voices")
    busy = threading.Event()
    inst.worker.submit(busy.wait)  # a long rescan holds the game's worker (a fast crowd queues dozens)
    ran = threading.Event()
    monkeypatch.setattr(reliability, "refresh_voices", lambda i: ran.set())
    assert reliability.refit_if_due(inst, inst.settings["REFIT_EVERY_VOTES"])
    try:
        assert ran.wait(10), "the check of shared voices ran while the rescans' worker was busy"
    finally:
        busy.set()
        inst.worker.join()
        inst.checker.join()
