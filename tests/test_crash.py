"""Crash safety: SIGKILL a real server under 50 concurrent Socket.IO voters, restart, audit the database."""

import shutil

import pytest
from conftest import _settings, oracle_puzzles
from crashload import audit, load_and_kill_in_child


@pytest.mark.slow
def test_every_acknowledged_vote_survives_a_sigkill_under_50_voters(tmp_path, tiny_demo_home):
    from game.app.instance import Instance
    home = tmp_path / "instance"
    shutil.copytree(tiny_demo_home, home)
    inst = Instance(home, _settings(home))
    ids, puzzles = oracle_puzzles(inst, n_merge=40, n_split=20, gold_every=2)
    inst.store.close()
    answers = {i: "yes" if p["truth"] == (p["kind"] == "merge") else "no" for i, p in zip(ids, puzzles)}
    # votes count once a voter is established by a record: two right gold answers here, so edits happen
    run = load_and_kill_in_child(home, answers, voters=50, kill_after=200, ESTABLISHED_GOLD_ANSWERS=2,
                                 ESTABLISHED_ALPHA=0.4)
    assert len(run["acked"]) >= 50, run  # the kill came mid-load
    figures = audit(home, run["acked"])
    assert figures["persisted"] == figures["acked"] and figures["edits"] > 0
