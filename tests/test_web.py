"""The web layer with real clients: Flask's test client and Flask-SocketIO's test client."""

import pytest
from conftest import oracle_puzzles

from game.app import players
from game.app import store as st
from game.web import create_app, socketio


@pytest.fixture
def app(inst):
    oracle_puzzles(inst)
    st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
    return create_app({"TESTING": True, "LEADERBOARD_INTERVAL": 0.05}, instance=inst)


def _token(client):
    return client.get("/auth/csrf").get_json()["csrf_token"]


def _guest(client):
    reply = client.post("/auth/guest", headers={"Accept": "application/json", "X-CSRFToken": _token(client)})
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()["player"]


def _sio(app, client):
    return socketio.test_client(app, flask_test_client=client)


def test_healthz_reports_ready_with_puzzles(app):
    reply = app.test_client().get("/healthz")
    assert reply.status_code == 200 and reply.get_json()["ready"] is True


def test_healthz_is_503_while_preparing(inst):
    st.set_job(inst.store, "prepare", "running", 1, 3, "generating")
    reply = create_app({"TESTING": True}, instance=inst).test_client().get("/healthz")
    assert reply.status_code == 503 and reply.get_json()["ready"] is False


def test_posts_without_the_csrf_token_are_refused(app):
    client = app.test_client()
    reply = client.post("/auth/register", json={"username": "alice", "password": "long password"})
    assert reply.status_code == 400 and "token" in reply.get_json()["error"]
    assert st.player_credentials(app.extensions["proofquest"].store, "alice") is None


def test_register_log_out_and_log_in_again(app):
    client = app.test_client()
    token = _token(client)
    reply = client.post("/auth/register", json={"username": "alice", "password": "long password"},
                        headers={"X-CSRFToken": token})
    assert reply.get_json()["player"]["username"] == "alice"
    token = reply.get_json()["csrf_token"]  # logging in starts a new session, with a new token
    client.post("/auth/logout", headers={"X-CSRFToken": token, "Accept": "application/json"})
    assert client.get("/api/me").status_code == 401
    token = _token(client)
    bad = client.post("/auth/login", json={"username": "alice", "password": "wrong password"},
                      headers={"X-CSRFToken": token})
    assert bad.status_code == 400 and bad.get_json()["error"] == "wrong username or password"
    good = client.post("/auth/login", json={"username": "alice", "password": "long password"},
                       headers={"X-CSRFToken": token})
    assert good.status_code == 200 and client.get("/api/me").get_json()["player"]["username"] == "alice"


def test_the_sign_up_page_tells_a_logged_in_player_who_they_are(app):
    client = app.test_client()
    assert "signed-in-note" not in client.get("/auth/register").get_data(as_text=True)
    client.post("/auth/register", json={"username": "dora", "password": "long password"},
                headers={"X-CSRFToken": _token(client)})
    page = client.get("/auth/register").get_data(as_text=True)
    assert "signed-in-note" in page and "<strong>dora</strong>" in page and "Join ProofQuest" not in page


def test_a_guest_claims_an_account_and_keeps_the_points(app):
    client = app.test_client()
    guest = _guest(client)
    sio = _sio(app, client)
    puzzle = sio.emit("next_puzzle", callback=True)["puzzle"]
    assert sio.emit("vote", {"puzzle": puzzle["id"], "ticket": puzzle["ticket"], "answer": "unsure", "ms": 900}, callback=True)["ok"]
    reply = client.post("/auth/register", json={"username": "carol", "password": "long password"},
                        headers={"X-CSRFToken": _token(client)})
    me = reply.get_json()["player"]
    assert me["id"] == guest["id"] and me["points"] > 0 and not me["is_guest"]


def test_socket_connection_needs_a_session(app):
    sio = socketio.test_client(app, flask_test_client=app.test_client())
    assert not sio.is_connected()


def test_socket_vote_is_acknowledged_after_commit_and_repeats_are_refused(app):
    client = app.test_client()
    guest = _guest(client)
    sio = _sio(app, client)
    puzzle = sio.emit("next_puzzle", callback=True)["puzzle"]
    ack = sio.emit("vote", {"puzzle": puzzle["id"], "ticket": puzzle["ticket"], "answer": "no", "ms": 1500}, callback=True)
    assert ack["ok"] and ack["total"] == ack["points"] > 0
    store = app.extensions["proofquest"].store
    assert [v["player_id"] for v in st.puzzle_votes(store, puzzle["id"])] == [guest["id"]]
    again = sio.emit("vote", {"puzzle": puzzle["id"], "ticket": puzzle["ticket"], "answer": "yes"}, callback=True)
    assert again == {"ok": False, "error": f"you have already answered puzzle {puzzle['id']}; ask for the next one"}
    forged = sio.emit("vote", {"puzzle": 10**9, "answer": "yes"}, callback=True)
    assert not forged["ok"] and "no puzzle" in forged["error"]
    junk = sio.emit("vote", "not a dict", callback=True)
    assert not junk["ok"]
    assert st.vote_count(store) == 1


def test_the_players_other_tabs_hear_of_the_vote_the_voting_tab_only_by_its_ack(app):
    client = app.test_client()
    _guest(client)
    voting, other = _sio(app, client), _sio(app, client)
    voting.get_received(), other.get_received()
    puzzle = voting.emit("next_puzzle", callback=True)["puzzle"]
    ack = voting.emit("vote", {"puzzle": puzzle["id"], "ticket": puzzle["ticket"], "answer": "unsure"}, callback=True)
    scores = [m["args"][0] for m in other.get_received() if m["name"] == "score"]
    assert scores == [{"points": ack["total"], "gained": ack["points"], "streak": ack["streak"]}]
    assert not [m for m in voting.get_received() if m["name"] == "score"]


def test_rest_vote_does_what_the_socket_vote_does(app):
    client = app.test_client()
    _guest(client)
    puzzle = client.get("/api/puzzle/next").get_json()["puzzle"]
    reply = client.post("/api/vote", json={"puzzle": puzzle["id"], "ticket": puzzle["ticket"], "answer": "unsure"},
                        headers={"X-CSRFToken": _token(client)})
    assert reply.status_code == 200 and reply.get_json()["ok"]
    unknown = client.post("/api/vote", json={"puzzle": puzzle["id"], "ticket": puzzle["ticket"], "answer": "perhaps"},
                          headers={"X-CSRFToken": _token(client)})
    assert unknown.status_code == 400 and "unknown answer" in unknown.get_json()["error"]


def test_a_vote_that_asks_for_the_next_puzzle_gets_it_in_its_acknowledgement_to_the_last(app):
    client = app.test_client()
    guest = _guest(client)
    sio = _sio(app, client)
    store = app.extensions["proofquest"].store
    shown = sio.emit("next_puzzle", callback=True)["puzzle"]
    ahead = sio.emit("next_puzzle", {"exclude": [shown["id"]]}, callback=True)["puzzle"]  # the page's prefetch
    # a malformed request for the next puzzle refuses the vote before anything is written
    for bad in ("soon", {"exclude": "all"}, {"exclude": [1], "more": True}):
        refused = sio.emit("vote", {"puzzle": shown["id"], "ticket": shown["ticket"], "answer": "no", "next": bad},
                           callback=True)
        assert not refused["ok"] and "next" in refused["error"], refused
    assert st.vote_count(store) == 0
    ack = sio.emit("vote", {"puzzle": shown["id"], "ticket": shown["ticket"], "answer": "no",
                            "next": {"exclude": [shown["id"], ahead["id"]]}}, callback=True)
    assert ack["ok"] and ack["next"]["id"] not in (shown["id"], ahead["id"]) and ack["next"]["ticket"]
    # play on by the acknowledgements alone: every puzzle once, each vote committed, the last one says why
    seen, acked, puzzle = {shown["id"], ahead["id"], ack["next"]["id"]}, 1, ahead
    queue = [ack["next"]]
    while puzzle is not None:
        ack = sio.emit("vote", {"puzzle": puzzle["id"], "ticket": puzzle["ticket"], "answer": "unsure",
                                "next": {"exclude": [puzzle["id"], *(q["id"] for q in queue)]}}, callback=True)
        assert ack["ok"], ack
        acked += 1
        if ack["next"] is not None:
            assert ack["next"]["id"] not in seen
            seen.add(ack["next"]["id"])
            queue.append(ack["next"])
        else:
            assert "no puzzle is left" in ack["next_error"]
        puzzle = queue.pop(0) if queue else None
    assert acked == len(seen) > 10
    assert st.vote_count(store) == acked == len({v["puzzle_id"] for v in st.player_votes(store, guest["id"])})
    # the same over HTTP
    http = app.test_client()
    _guest(http)
    first = http.get("/api/puzzle/next").get_json()["puzzle"]
    reply = http.post("/api/vote", json={"puzzle": first["id"], "ticket": first["ticket"], "answer": "unsure",
                                         "next": {"exclude": [first["id"]]}}, headers={"X-CSRFToken": _token(http)})
    assert reply.status_code == 200 and reply.get_json()["next"]["id"] != first["id"]


def test_others_see_the_leaderboard_change_live(app):
    watcher_http, voter_http = app.test_client(), app.test_client()
    _guest(watcher_http)
    voter = _guest(voter_http)
    watcher = _sio(app, watcher_http)
    assert watcher.emit("watch_leaderboard", {"period": "all"}, callback=True)["ok"]
    watcher.get_received()
    sio = _sio(app, voter_http)
    puzzle = sio.emit("next_puzzle", callback=True)["puzzle"]
    sio.emit("vote", {"puzzle": puzzle["id"], "ticket": puzzle["ticket"], "answer": "unsure"}, callback=True)
    for _ in range(40):
        socketio.sleep(0.05)
        boards = [m for m in watcher.get_received() if m["name"] == "leaderboard"]
        if boards:
            break
    entries = boards[-1]["args"][0]["entries"]
    assert voter["id"] in [e["id"] for e in entries]



def test_a_board_nobody_watches_is_not_computed(app, monkeypatch):
    from game.crowd import reports
    computed = []
    leaderboard, stats = reports.leaderboard, reports.game_stats
    monkeypatch.setattr(reports, "leaderboard", lambda inst, period="all", *a, **k:
                        computed.append(period) or leaderboard(inst, period, *a, **k))
    monkeypatch.setattr(reports, "game_stats", lambda inst: computed.append("stats") or stats(inst))
    voter_http, watcher_http = app.test_client(), app.test_client()
    _guest(voter_http)
    _guest(watcher_http)
    sio = _sio(app, voter_http)
    broadcaster = app.extensions["proofquest.broadcaster"]

    def vote_and_tick():
        puzzle = sio.emit("next_puzzle", callback=True)["puzzle"]
        assert sio.emit("vote", {"puzzle": puzzle["id"], "ticket": puzzle["ticket"], "answer": "unsure"},
                        callback=True)["ok"]
        with app.app_context():
            broadcaster.tick()

    vote_and_tick()
    assert computed == []  # nobody watches: no board, no statistics
    watcher = _sio(app, watcher_http)
    assert watcher.emit("watch_leaderboard", {"period": "week"}, callback=True)["ok"]
    computed.clear()
    vote_and_tick()
    assert computed == ["week"]
    assert [m["args"][0]["period"] for m in watcher.get_received() if m["name"] == "leaderboard"] == ["week"] * 2

def test_the_weekly_board_is_sent_again_when_a_new_week_begins(app, monkeypatch):
    """At Monday 00:00 UTC nothing is voted, but the week's board starts empty: watchers get it."""
    from game.app import store as st
    watcher_http = app.test_client()
    _guest(watcher_http)
    watcher = _sio(app, watcher_http)
    assert watcher.emit("watch_leaderboard", {"period": "week"}, callback=True)["ok"]
    broadcaster = app.extensions["proofquest.broadcaster"]
    with app.app_context():
        broadcaster.tick()
        watcher.get_received()
        broadcaster.tick()  # nothing changed: nothing sent
        assert not [m for m in watcher.get_received() if m["name"] == "leaderboard"]
        week = st.week_of
        monkeypatch.setattr(st, "week_of", lambda t: week(t) + 1)
        broadcaster.tick()
    boards = [m["args"][0] for m in watcher.get_received() if m["name"] == "leaderboard"]
    assert [b["period"] for b in boards] == ["week"]


def test_puzzle_images_are_png_and_truth_is_only_for_practice(app):
    client = app.test_client()
    _guest(client)
    puzzle = client.get("/api/puzzle/next").get_json()["puzzle"]
    with client.get(f"/puzzle-image/{puzzle['id']}/3/overlay.png") as image:
        assert image.status_code == 200 and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get(f"/puzzle-image/{puzzle['id']}/3/truth.png").status_code == 400
    assert client.get(f"/puzzle-image/{puzzle['id']}/99/plain.png").status_code == 400
    assert client.get("/puzzle-image/424242/0/plain.png").status_code == 400


def test_oversized_requests_are_refused(inst):
    oracle_puzzles(inst)
    app = create_app({"TESTING": True, "MAX_UPLOAD_MB": 1}, instance=inst)
    client = app.test_client()
    reply = client.post("/api/vote", data=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "application/json"})
    assert reply.status_code == 413 and "too large" in reply.get_json()["error"]


def test_log_in_never_redirects_to_another_site(app):
    store = app.extensions["proofquest"].store
    players.register(store, "dave", "long password")
    client = app.test_client()
    token = _token(client)
    for target, expected in (("//evil.example/x", "/start"), ("https://evil.example", "/start"), ("/me", "/me")):
        reply = client.post(f"/auth/login?next={target}", data={"username": "dave", "password": "long password",
                                                                  "csrf_token": token})
        assert reply.status_code == 302 and reply.headers["Location"] == expected
        token = _token(client)


def test_next_puzzle_skips_the_puzzles_a_client_excludes(app):
    client = app.test_client()
    _guest(client)
    sio = _sio(app, client)
    first = sio.emit("next_puzzle", callback=True)["puzzle"]
    second = sio.emit("next_puzzle", {"exclude": [first["id"]]}, callback=True)["puzzle"]
    assert second["id"] != first["id"]
    assert not sio.emit("next_puzzle", {"exclude": "x"}, callback=True)["ok"]


def test_the_landing_page_says_how_many_corrections_came_from_known_answers(prepared_inst):
    # a first start applies the known answers' edits: "28 corrections applied" beside "0 answers given" read
    # as a contradiction to a player (a play-test)
    known = st.known_answer_edit_count(prepared_inst.store)
    assert known > 0 and st.vote_count(prepared_inst.store) == 0
    page = create_app({"TESTING": True}, instance=prepared_inst).test_client().get("/").get_data(as_text=True)
    assert f"({known} from answers known before the game began)" in page
