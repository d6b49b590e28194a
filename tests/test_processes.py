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



def test_each_process_sends_the_boards_to_its_own_watchers_and_never_through_the_queue(home, inst, redis_url):
    """The boards are read from the shared database: sent through the queue, each process's copy reached every
    watcher (one per process with votes, each interval) and each process computed them with nobody watching.
    Each process now sends them only to its own watchers, which see the other processes' votes all the same;
    the queue carries only what is for one player (scores, retirements)."""
    import json

    import redis
    oracle_puzzles(inst)
    inst.store.close()
    shared = {"MESSAGE_QUEUE": redis_url, "RATE_LIMIT_STORAGE": redis_url, "LEADERBOARD_INTERVAL": 0.2}
    queue = redis.Redis.from_url(redis_url).pubsub(ignore_subscribe_messages=True)
    queue.subscribe("flask-socketio")  # Flask-SocketIO's channel
    with running_server(home, **shared) as first, running_server(home, **shared) as second:
        voters = [_player(first), _player(second)]
        _, board = _player(first)
        boards, got = [], threading.Event()

        def on_board(data):
            boards.append(data)
            if data["period"] == "all" and {e["id"] for e in data["entries"]} >= {v["id"] for v, _ in voters}:
                got.set()

        board.on("leaderboard", on_board)
        try:
            assert board.call("watch_leaderboard", {"period": "all"}, timeout=30)["ok"]
            for _, client in voters:
                puzzle = client.call("next_puzzle", {}, timeout=30)["puzzle"]
                assert client.call("vote", {"puzzle": puzzle["id"], "answer": "yes", "ms": 1500,
                                            "ticket": puzzle["ticket"]}, timeout=30)["ok"]
            assert got.wait(timeout=15), f"the watcher saw only {boards[-1:]}"
        finally:
            board.disconnect()
            for _, client in voters:
                client.disconnect()
    events, quiet = [], 0
    while quiet < 3:  # read until the channel has been quiet for a while (the subscription's own reply is None)
        message = queue.get_message(timeout=0.5)
        quiet = 0 if message is not None else quiet + 1
        if message is not None:
            events.append(json.loads(message["data"]).get("event"))  # python-socketio sends JSON
    queue.close()
    assert events, "the subscription saw the queue's traffic (the voters' scores, for their other tabs)"
    assert "leaderboard" not in events and "stats" not in events, events


def test_a_process_that_loses_the_race_for_a_fresh_secret_key_takes_the_winners(inst, monkeypatch):
    """Server processes starting together over a fresh folder: another one writes the key between this one's
    check and its write (bench_writer's four processes met this), and all must sign with one key."""
    from pathlib import Path

    winner = inst.secret_key()
    seen = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: False if self.name == "secret_key" else seen(self))
    assert inst.secret_key() == winner
    assert [p.name for p in inst.home.iterdir() if "secret" in p.name] == ["secret_key"]
