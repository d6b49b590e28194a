"""Several server processes over one instance folder: one secret key, Socket.IO rooms shared through Redis."""

import threading

import pytest
import requests
import socketio
from conftest import oracle_puzzles, running_server

pytestmark = pytest.mark.slow


def _player(url: str) -> tuple[dict, socketio.Client]:
    with requests.Session() as http:
        token = http.get(f"{url}/auth/csrf", timeout=30).json()["csrf_token"]
        player = http.post(f"{url}/auth/guest", headers={"X-CSRFToken": token, "Accept": "application/json"},
                           timeout=30).json()["player"]
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
    client = socketio.Client(reconnection=False)
    client.connect(url, headers={"Cookie": cookie}, transports=["websocket"], wait_timeout=30)
    return player, client


def test_a_vote_on_one_process_updates_a_leaderboard_watched_on_another(home, inst, redis_url):
    oracle_puzzles(inst)
    inst.store.close()
    shared = {"MESSAGE_QUEUE": redis_url, "RATE_LIMIT_STORAGE": redis_url, "LEADERBOARD_INTERVAL": 0.2}
    with running_server(home, **shared) as first, running_server(home, **shared) as second:
        assert first != second
        _, board = _player(first)
        voter, playing = _player(second)
        seen, got = [], threading.Event()

        def on_board(data):
            seen.append(data)
            if any(e["id"] == voter["id"] and e["points"] > 0 for e in data["entries"]):
                got.set()

        board.on("leaderboard", on_board)
        try:
            assert board.call("watch_leaderboard", {"period": "all"}, timeout=30)["ok"]
            puzzle = playing.call("next_puzzle", {}, timeout=30)["puzzle"]
            ack = playing.call("vote", {"puzzle": puzzle["id"], "answer": "yes", "ms": 1500,
                                        "ticket": puzzle["ticket"]}, timeout=30)
            assert ack["ok"] and ack["total"] > 0
            assert got.wait(timeout=15), f"the watcher on the other process saw only {seen[-1:]}"
        finally:
            board.disconnect()
            playing.disconnect()



def test_a_process_that_loses_the_race_for_a_fresh_secret_key_takes_the_winners(inst, monkeypatch):
    """Server processes starting together over a fresh folder: another one writes the key between this one's
    check and its write (bench_writer's four processes met this), and all must sign with one key."""
    from pathlib import Path

    winner = inst.secret_key()
    seen = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: False if self.name == "secret_key" else seen(self))
    assert inst.secret_key() == winner
    assert [p.name for p in inst.home.iterdir() if "secret" in p.name] == ["secret_key"]
