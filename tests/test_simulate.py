"""``run.py simulate`` plays the real server through python-socketio clients."""

import json
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import oracle_puzzles, running_server

from game import simulate
from game.app import store as st
from game.errors import ProofQuestError
from game.puzzles.truth import supervoxel_truth

ROOT = Path(__file__).resolve().parents[1]


def test_accuracies_are_drawn_around_the_crowds_with_some_at_chance():
    acc = simulate.Crowd(players=400, accuracy=0.8, chance_share=0.25, seed=1).accuracies()
    at_chance = acc == 0.5
    assert 0.18 < at_chance.mean() < 0.32
    assert abs(acc[~at_chance].mean() - 0.8) < 0.02


@pytest.fixture
def crowd_server(home, inst):
    """The live server over the tiny instance with enough secret gold for a crowd to keep its standing.

    A standing is the whole gold record, checked again at every gold answer. With the 4 secret gold
    puzzles of ``live_server`` a player who misses one of them is never established again (3 of 4 is 1.6
    times likelier at ESTABLISHED_ALTERNATIVE 0.8 than at chance, short of the 2.5 that ESTABLISHED_ALPHA
    0.4 asks), and each player answers all 4 early: at the crowd's accuracies (0.888 to 0.985) about one
    run in six keeps at most two of its four players established, and then no puzzle ever has the
    MIN_VOTES 3 counted votes an edit needs; two in five keep three, whose three "yes" at reliabilities
    near 0.75 leave most puzzles just under APPLY_CONFIDENCE, open with no fifth player to come (the ARE
    unchanged, or nearly). With 12, a player answering 9 to 12 of them stays established with 7 of 9, 8 of
    10, 8 of 11 or 9 of 12 right: under one run in 400 keeps two or fewer (binomial records at those
    accuracies), and its reliability rises with the record.
    """
    oracle_puzzles(inst, more_gold=8)
    with running_server(home, LEADERBOARD_INTERVAL=0.2) as url:
        yield url


def test_simulated_crowd_plays_the_live_server_and_the_segmentation_improves(crowd_server, home, inst):
    # patient players: they come back for 4 s when no puzzle is left, while the decisions' rescans make more
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), "--home", str(home), "simulate", "--url",
                          crowd_server, "--players", "4", "--accuracy", "0.95", "--chance-share", "0",
                          "--patience", "4", "--json"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert set(result) >= {"before", "after", "oracle", "votes"}
    assert set(result["after"]) == {"adapted_rand_error", "rand_index", "vi_split", "vi_merge", "edge_accuracy",
                                    "segments", "per_section"}
    assert result["after"]["per_section"] is None  # the demo's ground truth is 3D
    assert result["votes"] == st.vote_count(inst.store) > 0
    assert result["oracle"]["adapted_rand_error"] < result["before"]["adapted_rand_error"]
    assert result["after"]["adapted_rand_error"] < result["before"]["adapted_rand_error"], \
        {k: result.get(k) for k in ("decisions", "votes", "waits", "gap_closed")}
    assert result["decisions"]["retired"] > 0 and result["decisions"]["wrong_share"] <= 0.2


def test_an_expert_settles_the_queue_through_the_admin_routes_by_the_truth(live_server, inst):
    crowd = [p for p in st.puzzles(inst.store, volume="demo", gold=False) if p["truth"] is not None]
    right = next(p for p in crowd if p["truth"] and p["kind"] == "merge")
    wrong = next(p for p in crowd if not p["truth"])
    for p in (right, wrong):
        st.set_puzzle_state(inst.store, p["id"], "expert")
    a, b = right["anchors"]
    assert inst.agglomeration("demo").mapping[a] != inst.agglomeration("demo").mapping[b]
    known = {"demo": supervoxel_truth(inst.volumes.open("demo"), inst.agglomeration("demo").n_supervoxels)}

    assert simulate.expert_settles(inst, live_server, known.get) == {"applied": 1, "rejected": 1, "skipped": 0}
    applied, rejected = st.puzzle(inst.store, right["id"]), st.puzzle(inst.store, wrong["id"])
    assert (applied["state"], applied["decision"], rejected["state"], rejected["decision"], rejected["edit_seq"]) \
        == ("retired", True, "retired", False, None)
    edit = next(e for e in st.edits(inst.store, "demo") if e["seq"] == applied["edit_seq"])
    assert edit["provenance"]["source"] == "expert" and edit["author"].startswith("admin:")
    assert inst.agglomeration("demo").mapping[a] == inst.agglomeration("demo").mapping[b]
    # the expert was an admin account of its own, a plain player again once done; the queue is empty now, so a
    # second expert has nothing to do
    assert st.players_with_role(inst.store, "admin") == []
    assert st.player(inst.store, int(edit["author"].split(":")[1]))["username"].startswith("sim-expert-")
    assert simulate.expert_settles(inst, live_server, known.get) == {"applied": 0, "rejected": 0, "skipped": 0}


def test_a_simulated_player_answers_about_the_parts_as_they_are_now(prepared_inst):
    """A merge puzzle made before another edit joined its segments: its truth is the current one (moot: None),
    not the one stored when the pool made it."""
    from game.crowd.votes import commit_puzzle_edit
    from game.puzzles.truth import supervoxel_truth

    inst = prepared_inst
    volume = inst.volumes.open("demo")
    known = {"demo": supervoxel_truth(volume, inst.agglomeration("demo").n_supervoxels)}
    merges = [p for p in st.puzzles(inst.store, volume="demo", state="open", gold=False)
              if p["kind"] == "merge" and p["truth"]]
    first = merges[0]
    # another open merge between the same two segments, decided first
    again = {**first, "id": None, "anchors": list(reversed(first["anchors"]))}
    assert simulate.current_truth(inst, first, known.get)["truth"] is True
    with inst.store.write():
        commit_puzzle_edit(inst, again, author="consensus", provenance=None)
    assert st.puzzle(inst.store, first["id"])["truth"] == 1
    assert simulate.current_truth(inst, first, known.get)["truth"] is None
    gold = next(p for p in st.puzzles(inst.store, volume="demo", gold=True) if p["truth"] is not None)
    assert simulate.current_truth(inst, gold, known.get)["truth"] == gold["truth"]


def test_a_patient_player_comes_back_for_puzzles_until_its_patience_runs_out(live_server, inst, monkeypatch):
    """Without patience a player leaves at the first "no puzzle left"; with some it asks again every
    PATIENCE_STEP seconds (the living pool's rescans make puzzles after decisions) and then leaves."""
    import random
    import time

    monkeypatch.setattr(simulate, "PATIENCE_STEP", 0.1)
    player = simulate.Player(live_server, 0.9, lambda pid: st.puzzle(inst.store, pid), random.Random(0))
    try:
        player.play(10_000)
        assert player.votes > 0 and player.waits == 0, "left at once when nothing was left"
        votes, started = player.votes, time.perf_counter()
        player.play(10_000, patience=0.5)
        assert player.waits >= 5 and time.perf_counter() - started >= 0.5
        assert player.votes >= votes
    finally:
        player.close()


def test_puzzles_hard_to_judge_by_looking_are_answered_with_the_hard_accuracy():
    crowd = simulate.Crowd(players=400, accuracy=0.8, chance_share=0.1, seed=3, hard_accuracy=0.6)
    easy, hard = crowd.accuracies(), crowd.hard_accuracies()
    at_chance = easy == 0.5
    assert (hard[at_chance] == 0.5).all() and abs(hard[~at_chance].mean() - 0.6) < 0.02
    assert (hard[~at_chance] < easy[~at_chance]).all()
    assert (simulate.Crowd(accuracy=0.8).hard_accuracies() == simulate.Crowd(accuracy=0.8).accuracies()).all()
    with pytest.raises(ProofQuestError, match="hard-accuracy"):
        simulate.Crowd(accuracy=0.8, hard_accuracy=0.9).hard_accuracies()
    # a sure player who cannot judge a sliver: right on the judgeable puzzle, at chance on the sliver
    frame = {"start": [0, 0, 0], "side": 96, "point": [3, 48, 48], "margin_px": 190.0, "areas_px": [4000.0, 9000.0],
             "width_px": 60.0, "contact_px": 80.0, "both_slices": 7, "enclosure": 0.2}
    sliver = {**frame, "width_px": 6.0}
    puzzles = {1: {"kind": "merge", "truth": 1, "detector": {"frame": frame}},
               2: {"kind": "merge", "truth": 1, "detector": {"frame": sliver}}}
    player = SimpleNamespace(truths=puzzles.get, rng=random.Random(0), accuracy=1.0, hard_accuracy=0.5)
    answers = {i: [simulate.Player.answer(player, {"id": i}) for _ in range(400)] for i in puzzles}
    assert set(answers[1]) == {"yes"}
    assert 150 < answers[2].count("yes") < 250


def test_a_player_faster_than_the_vote_limit_waits_and_goes_on(home, inst, monkeypatch):
    """A live server's vote limit is on by default: a simulated player refused by it waits and asks again,
    where it stopped the whole run (a test's four players once voted 90 times in a minute)."""
    monkeypatch.setattr(simulate, "THROTTLE_STEP", 0.2)
    oracle_puzzles(inst)
    with running_server(home, RATE_LIMIT_VOTES="3 per 2 seconds") as url:
        player = simulate.Player(url, 0.9, lambda pid: st.puzzle(inst.store, pid), random.Random(0))
        try:
            player.play(7)
        finally:
            player.close()
    assert player.votes == 7 and player.throttled > 0
