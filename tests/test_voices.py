"""One record replayed by many accounts: the copies are found by how often they agree, and speak as one.

bench/bench_attack.py --replay plays the attack against a live server beside an honest crowd; these are the
small, exact cases: the test between accounts, a voice's weight, and what happens to the decisions copies made.
"""

import math
import random

import pytest
from conftest import _settings, establish, oracle_puzzles, vote

from game.app import players
from game.app import store as st
from game.app.instance import Instance
from game.crowd import consensus as cs
from game.crowd import reliability, voices


def _crowd(seed: int, copies: int = 3, honest: int = 20, gold: int = 36, crowd: int = 200):
    """Answers as a replay attack meets an honest crowd: ``copies`` accounts replay one table of the secret
    gold (right at 0.85, so they share its mistakes) and then answer every other crowd puzzle "yes"; ``honest``
    independent players whose mistakes cluster (right at 0.95 on most puzzles, at 0.3 on a fifth that
    most get wrong together) answer all the gold and 3 in 10 crowd puzzles, with reliabilities stored 0.03
    below their accuracy (the Beta prior shrinks them). Rows: (player, puzzle, supports, truth of gold)."""
    rng = random.Random(seed)
    puzzles = [(q, rng.random() < 0.5, rng.random() < 0.2) for q in range(gold + crowd)]
    table = {q: t if rng.random() < 0.85 else not t for q, t, _ in puzzles[:gold]}
    votes, rel = [], {}
    for p in range(100, 100 + honest):
        right = []
        for q, t, hard in puzzles:
            if q >= gold and rng.random() > 0.3:
                continue
            answer = t if rng.random() < (0.3 if hard else 0.95) else not t
            votes.append((p, q, answer, t if q < gold else None))
            right.append(answer == t)
        rel[p] = sum(right) / len(right) - 0.03
    for p in range(1, copies + 1):
        votes += [(p, q, table[q], t) for q, t, _ in puzzles[:gold]]
        votes += [(p, q, True, None) for q, _, _ in puzzles[gold:] if rng.random() < 0.5]
        rel[p] = 0.85
    return votes, rel


def _threshold(rel) -> float:
    return 9.2 + math.log(len(rel) * (len(rel) - 1) / 2)  # as refresh_voices sets it


@pytest.mark.parametrize("seed", [0, 1, 2, 4, 5])
def test_copies_of_one_table_share_a_voice_and_independent_players_do_not(seed):
    votes, rel = _crowd(seed)
    evidence = voices.pair_evidence(votes, rel)
    found = voices.voices(evidence, threshold=_threshold(rel))
    assert found == {1: 1, 2: 1, 3: 1}, "the three copies are one voice, and no honest player is in any"
    # the honest pairs stay far from it: a fused crowd was the first version's failure on such a crowd
    assert max(llr for (a, b), (_, _, llr) in evidence.items() if a >= 100) < _threshold(rel) - 5


def test_a_careful_table_and_copies_that_vote_apart_are_not_caught():
    # what the test cannot see (the module says so): copies that vote apart on the crowd's puzzles leave only
    # their shared gold mistakes, too few to tell at the instance's threshold
    votes, rel = _crowd(0)
    apart = [(p, q, s if p >= 100 or q < 36 else random.Random(p * 1000 + q).random() < 0.5, t)
             for p, q, s, t in votes]
    assert voices.voices(voices.pair_evidence(apart, rel), threshold=_threshold(rel)) == {}


def test_one_account_like_several_honest_players_joins_none_of_them():
    strong = (100, 100, 50.0)
    # a hub linked to three players who are not linked to each other: no voice (it would join them all)
    assert voices.voices({(1, 2): strong, (1, 3): strong, (1, 4): strong}, threshold=10) == {}
    # copies linked all through are one voice, and an account beside them joins it only through two of them
    copies = {(a, b): strong for a in (1, 2, 3) for b in (1, 2, 3) if a < b}
    assert voices.voices({**copies, (3, 9): strong}, threshold=10) == {1: 1, 2: 1, 3: 1}
    assert voices.voices({**copies, (2, 9): strong, (3, 9): strong}, threshold=10) == {1: 1, 2: 1, 3: 1, 9: 1}
    # two rings of copies joined by one pair stay two voices
    ring = {(a, b): strong for a in (11, 12, 13) for b in (11, 12, 13) if a < b}
    assert voices.voices({**copies, **ring, (3, 11): strong}, threshold=10) == \
        {1: 1, 2: 1, 3: 1, 11: 11, 12: 11, 13: 11}
    # a voice known from before is kept linked all through, whatever the evidence, and loses no member when one
    # of its accounts also matches new copies (the second review's attack: that released the others)
    assert voices.voices({}, threshold=10, known={5: 5, 6: 5, 7: 5}) == {5: 5, 6: 5, 7: 5}
    new = {(a, b): strong for a in (7, 20, 21, 22) for b in (7, 20, 21, 22) if a < b}
    assert voices.voices(new, threshold=10, known={5: 5, 6: 5, 7: 5}) == {p: 5 for p in (5, 6, 7, 20, 21, 22)}


def test_evidence_needs_shared_answers_and_grows_with_them():
    votes, rel = _crowd(0, copies=2, honest=0)
    few = voices.pair_evidence([v for v in votes if v[1] < 10], rel)[(1, 2)]
    many = voices.pair_evidence(votes, rel)[(1, 2)]
    assert few[:2] == (10, 10) and many[0] == many[1] > 90
    assert few[2] < 9.2 <= many[2], "ten identical answers prove little; ninety do"
    with pytest.raises(ValueError):
        voices.pair_evidence(votes, rel, slack=0)
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


def _play(inst, accounts, ids, puzzles, answer) -> None:
    """Each account answers every puzzle still open, in order: ``answer(puzzle)`` gives "yes" or "no"."""
    for account in accounts:
        for pid, p in zip(ids, puzzles):
            if st.puzzle(inst.store, pid)["state"] == "open":
                vote(inst, account["id"], pid, answer(p))


def _force(p) -> str:
    return "yes" if p["kind"] == "merge" else "no"  # for the edit, whatever is shown


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
    establish(inst, sybils, 0.8)
    # the same answers everywhere, each wrong: "yes" to the wrong joins only, "yes" (no cut) to the right cuts; as
    # often for the edit as an honest player (not one-sided)
    _play(inst, sybils, ids, puzzles, lambda p: ("yes" if not p["truth"] else "no") if p["kind"] == "merge" else "yes")
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
    for pid in forced:  # one voice at 0.8 decides no merge alone: reopened, its edit reverted
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
    counted = {v["player_id"]: v["counted"] for v in st.puzzle_votes(inst.store, pid)}
    assert sum(counted[s["id"]] or 0 for s in sybils) == 1, "the voice's votes are recorded as one counted vote"

    # checked again with nothing new: nothing changes
    assert reliability.refresh_voices(inst) == set()
    assert st.one_sided_players(inst.store) == set(), "they answered each side as often as honest players"


def test_accounts_that_back_every_edit_stop_counting_and_what_they_forced_is_undone(home):
    # one-sided accounts, copies or not: "yes" to every join and "no" to every cut check, whatever is shown
    inst = Instance(home, _settings(home, VOICE_EVIDENCE=1.0))
    try:
        ids, puzzles = oracle_puzzles(inst, gold_every=1000)
        forcers = [players.create_guest(inst.store) for _ in range(3)]
        establish(inst, forcers, 0.8)
        _play(inst, forcers, ids, puzzles, _force)
        wrong = [pid for pid, p in zip(ids, puzzles) if p["kind"] == "merge" and not p["truth"]
                 and st.puzzle(inst.store, pid)["decision"] == 1]
        assert wrong
        honest = [players.create_guest(inst.store) for _ in range(2)]  # an honest pair, as often yes as the truth
        establish(inst, honest, 0.8)
        _play(inst, honest, ids, puzzles, lambda p: "yes" if p["truth"] == (p["kind"] == "merge") else "no")
        reliability.refresh_voices(inst)
        assert st.one_sided_players(inst.store) == {f["id"] for f in forcers}
        assert not any(counted for _, counted in st.standings(inst.store, [f["id"] for f in forcers]).values())
        for pid in wrong:  # their votes no longer count: what they alone forced is reverted and open again
            assert st.puzzle(inst.store, pid)["decision"] != 1
    finally:
        inst.store.close()


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


def test_a_voice_stays_once_found_and_zero_stops_looking(inst_voices, home):
    inst = inst_voices
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    sybils = [players.create_guest(inst.store) for _ in range(3)]
    establish(inst, sybils, 0.8)
    _play(inst, sybils, ids, puzzles, _force)
    assert reliability.refresh_voices(inst) == {s["id"] for s in sybils}
    reverted = st.edit_count(inst.store, "demo")
    # their records grow to the ceiling: copies then agree as independent experts would, and the evidence sinks
    establish(inst, sybils, 0.98)
    assert reliability.refresh_voices(inst) == set()
    assert set(st.voices_of(inst.store)) == {s["id"] for s in sybils}, "a voice found stays a voice"
    assert st.edit_count(inst.store, "demo") == reverted, "and what it forced is not brought back"
    # 0: no new voice is looked for (a fresh instance on the same folder), the old ones stay
    off = Instance(home, _settings(home, VOICE_EVIDENCE=0))
    try:
        more = [players.create_guest(off.store) for _ in range(2)]
        st.set_reliabilities(off.store, {m["id"]: (0.8, True) for m in more})
        assert reliability.refresh_voices(off) == set()
        assert set(st.voices_of(off.store)) == {s["id"] for s in sybils}
    finally:
        off.store.close()


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


@pytest.mark.parametrize("seed", [0, 1])
def test_twenty_copies_do_not_hide_among_themselves(seed):
    # a puzzle's share of answers would be the copies' own, and their agreement everyone's: near-duplicates
    # count as one voter in it (the first version of the puzzle's share found none of 20 in the bench)
    votes, rel = _crowd(seed, copies=20)
    found = voices.voices(voices.pair_evidence(votes, rel), threshold=_threshold(rel))
    assert found == {p: 1 for p in range(1, 21)}


def test_an_admin_lets_a_one_sided_account_count_again_for_good(inst):
    from game.crowd import audit
    player = players.create_guest(inst.store)
    establish(inst, [player], 0.8)
    st.set_one_sided(inst.store, [player["id"]])
    assert st.standings(inst.store, [player["id"]])[player["id"]][1] is False
    report = {r["id"]: r for r in audit.player_report(inst)}
    assert any("backs the edit" in text for text in report[player["id"]]["patterns"])
    from game.web import create_app
    app = create_app({"TESTING": True}, instance=inst)
    with app.test_request_context():
        from flask import render_template
        page = render_template("admin_players.html", players=list(report.values()), fast_ms=700)
    assert "one-sided: votes do not count" in page
    st.set_suspended(inst.store, player["id"], True)
    st.set_suspended(inst.store, player["id"], False)  # suspend and lift: the admin overrules the finding
    assert st.standings(inst.store, [player["id"]])[player["id"]][1] is True
    assert st.one_sided_players(inst.store) == set()
    assert st.one_sided_players(inst.store, overruled=True) == {player["id"]}, "and it is never checked again"


def test_what_an_admin_reverted_or_reapplied_stays_theirs_and_a_reopened_puzzle_is_made_anew(inst_voices):
    from game.app import editlog
    inst = inst_voices
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    sybils = [players.create_guest(inst.store) for _ in range(3)]
    establish(inst, sybils, 0.8)
    _play(inst, sybils, ids, puzzles, lambda p: ("yes" if not p["truth"] else "no") if p["kind"] == "merge" else "yes")
    forced = sorted((pid for pid in ids if st.puzzle(inst.store, pid)["decision"] == 1),
                    key=lambda pid: -st.puzzle(inst.store, pid)["edit_seq"])  # the newest edit first: nothing on it
    assert len(forced) >= 2
    admin = players.create_guest(inst.store)
    first = st.puzzle(inst.store, forced[0])
    editlog.toggle(inst, admin["id"], "demo", first["edit_seq"], revert=True)  # the admin reverts, then re-applies
    editlog.toggle(inst, admin["id"], "demo", first["edit_seq"], revert=False)
    made_before = {pid: st.puzzle(inst.store, pid)["made"] for pid in forced}
    reliability.refresh_voices(inst)
    kept = st.puzzle(inst.store, forced[0])
    assert kept["state"] == "retired" and kept["decision"] == 1, "the admin's re-applied edit is theirs"
    other = st.puzzle(inst.store, forced[1])
    assert other["state"] == "open" and other["made"] > max(made_before.values()), "reopened, made anew"
