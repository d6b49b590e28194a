"""Friendly edges of the pages: first visits, error pages in the site's layout, stale form tokens, counters."""

import re

import pytest
from conftest import oracle_puzzles

from game.app import players
from game.app import store as st
from game.web import create_app, socketio

PAGE = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture
def app(inst):
    oracle_puzzles(inst)
    st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
    app = create_app({"TESTING": True}, instance=inst)

    @app.get("/boom")
    def boom():
        raise RuntimeError("a bug")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


def _token_in(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def _guest(client):
    token = client.get("/auth/csrf").get_json()["csrf_token"]
    client.post("/auth/guest", headers={"Accept": "application/json", "X-CSRFToken": token})


def test_a_first_visit_to_play_lands_on_the_home_page_not_a_log_in_form(app):
    client = app.test_client()
    reply = client.get("/play", headers=PAGE)
    assert reply.status_code == 302 and reply.headers["Location"] == "/?next=/play"
    home = client.get("/?next=/play", headers=PAGE).get_data(as_text=True)
    assert "Play as guest" in home and "Play as a guest or log in first." in home
    assert 'href="/auth/login?next=/play"' in home  # a returning player logs in and goes on to play
    assert "Welcome back" not in client.get("/auth/login", headers=PAGE).get_data(as_text=True)


@pytest.mark.parametrize("path, code, title", [("/no/such/page", 404, "Nothing here"), ("/boom", 500,
                                                                                       "Something went wrong")])
def test_error_pages_are_in_the_sites_layout_with_a_way_back(app, path, code, title):
    reply = app.test_client().get(path, headers={**PAGE, "Referer": "http://localhost/leaderboard"})
    html = reply.get_data(as_text=True)
    assert reply.status_code == code and f"<h1>{title}</h1>" in html
    assert 'class="site-header"' in html and 'href="/leaderboard">Go back' in html and 'href="/">Home page' in html


def test_a_page_that_needs_a_role_says_so_in_the_layout(app):
    client = app.test_client()
    _guest(client)
    reply = client.get("/admin/", headers=PAGE)
    assert reply.status_code == 403 and "This page is not for you" in reply.get_data(as_text=True)
    assert client.get("/admin/puzzles", headers=PAGE).status_code == 403


def test_scripts_still_get_json_errors(app):
    client = app.test_client()
    reply = client.get("/api/nothing")
    assert reply.status_code == 404 and reply.get_json()["ok"] is False
    stale = client.post("/auth/guest", headers={"Accept": "application/json", "X-CSRFToken": "stale"})
    assert stale.status_code == 400 and "token" in stale.get_json()["error"]


def test_a_stale_play_as_guest_form_shows_a_page_with_a_fresh_one(app):
    client = app.test_client()
    reply = client.post("/auth/guest?next=/start", data={"csrf_token": "left-open-in-another-tab"}, headers=PAGE)
    html = reply.get_data(as_text=True)
    assert reply.status_code == 400 and reply.mimetype == "text/html" and "Please try that again" in html
    assert 'action="/auth/guest?next=/start"' in html and ">Play as guest</button>" in html
    again = client.post("/auth/guest?next=/start", data={"csrf_token": _token_in(html)}, headers=PAGE)
    assert again.status_code == 302 and again.headers["Location"] == "/start"


def test_a_stale_log_in_form_comes_back_filled_in(app):
    players.register(app.extensions["proofquest"].store, "alice", "long password")
    client = app.test_client()
    reply = client.post("/auth/login", data={"username": "alice", "password": "long password", "csrf_token": "x"},
                        headers=PAGE)
    html = reply.get_data(as_text=True)
    assert reply.status_code == 400 and 'value="alice"' in html and "send it again" in html
    again = client.post("/auth/login", data={"username": "alice", "password": "long password",
                                             "csrf_token": _token_in(html)}, headers=PAGE)
    assert again.status_code == 302


def test_the_answered_counter_comes_from_the_server(app):
    client = app.test_client()
    _guest(client)
    sio = socketio.test_client(app, flask_test_client=client)
    for _ in range(2):
        puzzle = sio.emit("next_puzzle", callback=True)["puzzle"]
        assert sio.emit("vote", {"puzzle": puzzle["id"], "ticket": puzzle["ticket"], "answer": "unsure"},
                        callback=True)["ok"]
    html = client.get("/play", headers=PAGE).get_data(as_text=True)
    assert re.search(r'data-testid="answered">2<', html)
    assert "How points work" in html
    # the record names the answers with the game's words: a join check, a cut check (not 'merge check')
    record = client.get("/me", headers=PAGE).get_data(as_text=True)
    named = re.findall(r"· (\w+) check · you said", record)
    assert len(named) == 2 and set(named) <= {"join", "cut"}


def test_the_puzzle_report_is_on_the_admin_pages(app):
    players.register(app.extensions["proofquest"].store, "ada", "lovelace-1815", role="admin")
    client = app.test_client()
    token = client.get("/auth/csrf").get_json()["csrf_token"]
    client.post("/auth/login", json={"username": "ada", "password": "lovelace-1815"}, headers={"X-CSRFToken": token})
    report = client.get("/admin/api/puzzles-report").get_json()["volumes"]["demo"]
    assert report["roles"]["gold"] > 0 and set(report["blind"]) == {"practice", "teach", "gold"}
    html = client.get("/admin/puzzles", headers=PAGE).get_data(as_text=True)
    assert 'data-testid="puzzle-report" data-volume="demo"' in html and "Answering without looking" in html
