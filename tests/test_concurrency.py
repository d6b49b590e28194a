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

    def slow_rescan(volume, decisions):
        release.wait(timeout=30)
        rescanned.extend((volume, puzzle["id"], edit_seq) for puzzle, edit_seq in decisions)

    inst.pool.after_decisions = slow_rescan
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


def test_rescans_that_queue_up_behind_one_another_run_as_one_scan(prepared_inst):
    inst = prepared_inst
    inst.worker = Worker("after-decisions")
    release, scans = threading.Event(), []
    inst.worker.submit(release.wait, 30)  # the worker is busy: the decisions' rescans queue up
    refill = inst.pool.refill

    def counted_refill(name, *, segments=None, progress=None):
        scans.append(None if segments is None else set(segments))
        return refill(name, segments=segments, progress=progress)

    inst.pool.refill = counted_refill
    agg = inst.agglomeration("demo")
    splits = [p for p in st.puzzles(inst.store, volume="demo", state="open", gold=False) if p["kind"] == "split"][:3]
    assert len(splits) == 3
    for p in splits:  # three cuts rejected while the worker was busy
        st.set_puzzle_state(inst.store, p["id"], "retired", decision=False, confidence=0.95)
        inst.pool.rescan_later("demo", p, None)
    release.set()
    inst.worker.join()
    assert scans == [{agg.segment_of(p["anchors"][0]) for p in splits}], "one scan of the three segments"
