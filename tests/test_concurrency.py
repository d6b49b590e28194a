"""Work that follows a vote runs beside the game: the vote is answered first, the rescan comes after."""

import threading

from conftest import establish, oracle_puzzles, vote

from game.app import players
from game.app import store as st
from game.concurrency import Worker


def test_a_decided_vote_is_answered_before_its_rescan_runs(inst):
    ids, _ = oracle_puzzles(inst, n_merge=4, n_split=0, gold_every=100)
    inst.settings.update(MIN_VOTES=2)
    crowd = [players.create_guest(inst.store) for _ in range(3)]
    establish(inst, crowd, 0.95)
    release, rescanned = threading.Event(), []

    def slow_rescan(volume, puzzle, edit_seq):
        release.wait(timeout=30)
        rescanned.append((volume, puzzle["id"], edit_seq))

    inst.pool.after_decision = slow_rescan
    inst.worker = Worker("after-decisions")
    puzzle = ids[0]
    replies = [vote(inst, c["id"], puzzle, "yes")["reply"] for c in crowd
               if st.puzzle(inst.store, puzzle)["state"] == "open"]
    assert replies[-1]["retired"] is not None and st.puzzle(inst.store, puzzle)["state"] == "retired"
    assert rescanned == []  # the decision was answered while its rescan waits
    release.set()
    inst.worker.join()
    assert rescanned == [("demo", puzzle, st.puzzle(inst.store, puzzle)["edit_seq"])]


def test_a_failed_background_call_is_logged_and_the_next_one_runs(caplog):
    worker, done = Worker("test"), []

    def fails():
        raise RuntimeError("boom")

    worker.submit(fails)
    worker.submit(done.append, 1)
    worker.join()
    assert done == [1] and "background work fails failed" in caplog.text
