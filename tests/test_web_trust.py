"""What the web layer refuses: forged redirects, names and sessions, floods, bad input; what it sends: headers.

Real SQLite, Flask's and Flask-SocketIO's test clients; the tests about the
Origin of a socket and about file modes run ``python run.py``.
"""

import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import oracle_puzzles

from game.app import players
from game.app import store as st
from game.errors import ProofQuestError
from game.web import create_app, socketio
from game.web.auth import safe_next

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def app(inst):
    oracle_puzzles(inst)
    st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
    return create_app({"TESTING": True, "LEADERBOARD_INTERVAL": 3600}, instance=inst)


def _limited_app(inst, **limits):
    oracle_puzzles(inst)
    return create_app({"TESTING": True, "LEADERBOARD_INTERVAL": 3600, "RATE_LIMITS_ENABLED": True, **limits},
                      instance=inst)


def _token(client):
    return client.get("/auth/csrf").get_json()["csrf_token"]


def _post(client, path, body=None, **kwargs):
    headers = {"X-CSRFToken": _token(client), "Accept": "application/json", **kwargs.pop("headers", {})}
    return client.post(path, json=body, headers=headers, **kwargs)


def _guest(client, **kwargs):
    reply = _post(client, "/auth/guest", **kwargs)
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()["player"]


def _log_in(client, username, password, **kwargs):
    return _post(client, "/auth/login", {"username": username, "password": password}, **kwargs)


# ----------------------------------------------------------------------------- redirects after log-in

@pytest.mark.parametrize("target", ["/%09/evil.example", "//evil.example/x", "https://evil.example", "/\\evil.example",
                                    "/%5Cevil.example", "%20//evil.example", "/%0d%0a/evil.example",
                                    "javascript:alert(1)", "/%00//evil.example", "///evil.example", "evil.example",
                                    "/x%20y", "http:/evil.example"])
def test_log_in_never_redirects_off_site(app, target):
    players.register(app.extensions["proofquest"].store, "dave", "long password")
    client = app.test_client()
    reply = client.post(f"/auth/login?next={target}", data={"username": "dave", "password": "long password",
                                                             "csrf_token": _token(client)})
    assert reply.status_code == 302 and reply.headers["Location"] == "/start"


def test_log_in_redirects_to_a_path_on_this_site_with_its_query():
    assert safe_next("/me?tab=points#top") == "/me?tab=points#top"
    assert safe_next("/\t/evil.example") is None and safe_next("/\\/evil.example") is None
    assert safe_next("/" + "a" * 5000) is None and safe_next(["/me"]) is None


# ----------------------------------------------------------------------------- usernames

@pytest.mark.parametrize("name", ["boss\n", "boss\r\n", "bo\nss", "boss\x00", "bo ss", "bóss", "boss\u200b", "b",
                                  "b" * 33])
def test_usernames_are_matched_in_full(app, name):
    client = app.test_client()
    reply = _post(client, "/auth/register", {"username": name, "password": "long password"})
    assert reply.status_code == 400 and "a username has" in reply.get_json()["error"]
    assert st.player_credentials(app.extensions["proofquest"].store, name.strip()) is None
    with pytest.raises(ProofQuestError):
        players.register(app.extensions["proofquest"].store, name, "long password")


# ----------------------------------------------------------------------------- log-in: same answer, same work

def test_unknown_users_get_the_same_message_and_the_same_hash_work(app, monkeypatch):
    store = app.extensions["proofquest"].store
    players.register(store, "erin", "long password")
    guest = players.create_guest(store)
    checked = []
    real = players.check_password_hash
    monkeypatch.setattr(players, "check_password_hash", lambda h, p: checked.append(h) or real(h, p))
    answers = {}
    for username in ("erin", "nobody", guest["username"], "bad name\n"):
        reply = _log_in(app.test_client(), username, "wrong password")
        answers[username] = (reply.status_code, reply.get_json()["error"])
    assert set(answers.values()) == {(400, "wrong username or password")}
    assert len(checked) == 4  # one password hash for each, whether the user exists or not
    assert all(h.startswith("scrypt:") for h in checked)


def test_log_in_with_non_text_credentials_is_a_400(app):
    for body in ({"username": "erin", "password": 12345678}, {"username": ["erin"], "password": "x" * 8},
                 {"username": "erin", "password": {"$ne": ""}}, {"username": "erin", "password": "p" * 5000}):
        reply = _log_in(app.test_client(), body["username"], body["password"])
        assert reply.status_code == 400 and len(reply.data) < 300


# ----------------------------------------------------------------------------- log-out ends the session

def test_a_cookie_saved_before_log_out_does_not_work_after_it(app):
    client = app.test_client()
    _guest(client)
    saved = client.get_cookie("session").value
    assert client.get("/api/me").status_code == 200
    assert _post(client, "/auth/logout").status_code == 200
    client.set_cookie("session", saved)
    assert client.get("/api/me").status_code == 401
    replay = app.test_client()
    replay.set_cookie("session", saved)
    assert replay.get("/api/me").status_code == 401 and replay.get("/play").status_code == 302


def test_log_out_disconnects_the_sessions_sockets_and_only_them(app):
    client, other = app.test_client(), app.test_client()
    _guest(client)
    _guest(other)
    mine, theirs = (socketio.test_client(app, flask_test_client=c) for c in (client, other))
    assert mine.is_connected() and theirs.is_connected()
    _post(client, "/auth/logout")
    assert not mine.is_connected() and theirs.is_connected()
    assert theirs.emit("next_puzzle", callback=True)["ok"]


def test_an_open_socket_whose_session_ended_stops_voting(app):
    """A socket on another server process is not disconnected at log-out; its next event is refused."""
    client = app.test_client()
    _guest(client)
    sio = socketio.test_client(app, flask_test_client=client)
    puzzle = sio.emit("next_puzzle", callback=True)["puzzle"]
    store = app.extensions["proofquest"].store
    store.query("SELECT 1")
    with store.write() as db:
        db.conn.execute("DELETE FROM sessions")
    ack = sio.emit("vote", {"puzzle": puzzle["id"], "answer": "yes"}, callback=True)
    assert ack == {"ok": False, "error": "your session has ended; log in again"}
    assert st.vote_count(store) == 0


def test_a_session_cookie_is_verified_once_and_an_altered_one_never(app, monkeypatch):
    client = app.test_client()
    _guest(client)
    cookie = client.get_cookie("session").value
    from flask.sessions import URLSafeTimedSerializer
    verified = []
    real = URLSafeTimedSerializer.loads
    monkeypatch.setattr(URLSafeTimedSerializer, "loads", lambda self, *a, **k: verified.append(1) or real(self, *a, **k))
    sio = socketio.test_client(app, flask_test_client=client)
    assert verified == [1]  # verified when the socket connected ...
    verified.clear()
    for _ in range(3):
        assert sio.emit("next_puzzle", callback=True)["ok"]
    assert verified == []  # ... and not at its events since
    altered = app.test_client()
    altered.set_cookie("session", cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"))
    assert altered.get("/api/me").status_code == 401 and verified == [1]
    app.session_interface._known.clear()
    # a socket's events after its first open no cookie at all (they read the session saved then) ...
    assert sio.emit("next_puzzle", callback=True)["ok"] and verified == [1]
    assert client.get("/api/me").status_code == 200 and verified == [1, 1]  # ... a request does: forgotten, again


def test_log_in_starts_a_new_session_id(app):
    store = app.extensions["proofquest"].store
    players.register(store, "fay", "long password")
    client = app.test_client()
    _guest(client)
    before = client.get_cookie("session").value
    assert _log_in(client, "fay", "long password").status_code == 200
    stale = app.test_client()
    stale.set_cookie("session", before)
    assert stale.get("/api/me").get_json()["player"]["username"] != "fay"


# ----------------------------------------------------------------------------- rate limits

def test_a_class_of_40_behind_one_address_joins_at_once_with_the_default_limits(inst):
    app = _limited_app(inst)
    for _ in range(40):
        _guest(app.test_client())
    store = app.extensions["proofquest"].store
    for i in range(40):
        players.register(store, f"pupil{i}", "long password")
    for i in range(40):
        assert _log_in(app.test_client(), f"pupil{i}", "wrong password" if i % 4 == 0 else "long password") \
            .status_code == (400 if i % 4 == 0 else 200)


def test_guest_creation_and_sign_up_are_limited_per_address(inst):
    app = _limited_app(inst, RATE_LIMIT_GUEST="3 per minute", RATE_LIMIT_REGISTER="2 per minute")
    for _ in range(3):
        _guest(app.test_client())
    refused = _post(app.test_client(), "/auth/guest")
    assert refused.status_code == 429 and "too many" in refused.get_json()["error"]
    assert _post(app.test_client(), "/auth/guest", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    for i in range(2):
        assert _post(app.test_client(), "/auth/register", {"username": f"u{i}xx", "password": "long password"}) \
            .status_code == 200
    assert _post(app.test_client(), "/auth/register", {"username": "u9xx", "password": "long password"}) \
        .status_code == 429
    assert st.player_credentials(app.extensions["proofquest"].store, "u9xx") is None


@pytest.mark.parametrize("proxies", [0, 1, 2])
def test_behind_trusted_proxies_limits_count_the_forwarded_client_address(inst, proxies):
    """Players behind one proxy are told apart by X-Forwarded-For only when TRUSTED_PROXIES says the proxy
    is there; without it a client cannot dodge a limit by writing the header itself."""
    app = _limited_app(inst, RATE_LIMIT_GUEST="2 per minute", TRUSTED_PROXIES=proxies)

    def guest(client_address):  # the proxies add the client's address, then each proxy's but the nearest
        chain = ", ".join([client_address] + [f"10.0.0.{i}" for i in range(1, proxies)])
        return _post(app.test_client(), "/auth/guest", headers={"X-Forwarded-For": chain},
                     environ_base={"REMOTE_ADDR": "127.0.0.1"})

    assert [guest("203.0.113.7").status_code for _ in range(3)] == [200, 200, 429]
    assert guest("198.51.100.9").status_code == (200 if proxies else 429)  # another player, or the proxy again
    store = app.extensions["proofquest"].store
    addresses = {r["created_address"] for r in store.query("SELECT created_address FROM players")}
    assert len(addresses) == (2 if proxies else 1)  # the admin's accounts-per-address count sees players too


def test_failed_log_ins_are_limited_per_username_and_address(inst):
    app = _limited_app(inst, RATE_LIMIT_LOGIN_FAILURES="3 per minute")
    store = app.extensions["proofquest"].store
    players.register(store, "gina", "long password")
    players.register(store, "hank", "long password")
    for _ in range(5):  # right passwords do not count
        assert _log_in(app.test_client(), "gina", "long password").status_code == 200
    for _ in range(3):
        assert _log_in(app.test_client(), "gina", "wrong password").status_code == 400
    locked = _log_in(app.test_client(), "GINA", "long password")
    assert locked.status_code == 429 and "too many" in locked.get_json()["error"]
    assert _log_in(app.test_client(), "hank", "long password").status_code == 200
    assert _log_in(app.test_client(), "gina", "long password",
                   environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 200
    page = app.test_client()
    form = page.post("/auth/login", data={"username": "gina", "password": "x", "csrf_token": _token(page)})
    assert form.status_code == 429 and b"too many attempts" in form.data and b"<form" in form.data


def test_votes_are_limited_per_player_over_rest_and_socket_together(inst):
    app = _limited_app(inst, RATE_LIMIT_VOTES="3 per minute")
    client = app.test_client()
    _guest(client)
    sio = socketio.test_client(app, flask_test_client=client)

    def vote_by_socket():
        puzzle = sio.emit("next_puzzle", callback=True)["puzzle"]
        return sio.emit("vote", {"puzzle": puzzle["id"], "answer": "unsure", "ticket": puzzle["ticket"]},
                        callback=True)

    def vote_by_rest():
        puzzle = client.get("/api/puzzle/next").get_json()["puzzle"]
        return _post(client, "/api/vote", {"puzzle": puzzle["id"], "answer": "unsure", "ticket": puzzle["ticket"]})

    acks = [vote_by_socket(), vote_by_socket()]
    assert all(a["ok"] for a in acks) and vote_by_rest().status_code == 200
    refused = vote_by_rest()
    assert refused.status_code == 429 and "too many" in refused.get_json()["error"]
    late = vote_by_socket()
    assert not late["ok"] and "too many" in late["error"]
    assert st.vote_count(app.extensions["proofquest"].store) == 3
    other = app.test_client()
    _guest(other)
    theirs = socketio.test_client(app, flask_test_client=other)
    puzzle = theirs.emit("next_puzzle", callback=True)["puzzle"]
    assert theirs.emit("vote", {"puzzle": puzzle["id"], "answer": "unsure", "ticket": puzzle["ticket"]},
                       callback=True)["ok"]


# ----------------------------------------------------------------------------- headers

def test_every_response_carries_the_security_headers(app):
    client = app.test_client()
    _guest(client)
    for path in ("/", "/play", "/api/me", "/static/css/app.css", "/nowhere", "/api/nowhere", "/auth/login"):
        reply = client.get(path)
        csp = reply.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self';" in csp and "unsafe-inline" not in csp, path
        assert reply.headers["X-Frame-Options"] == "DENY" and reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Referrer-Policy"] == "same-origin"
        reply.close()
    # Socket.IO's own answers (sent outside Flask) too: its long-polling handshake and a refused request
    for path in ("/socket.io/?EIO=4&transport=polling", "/socket.io/?EIO=4&transport=nonsense"):
        reply = client.get(path)
        assert reply.status_code in (200, 400), (path, reply.status_code)
        assert reply.headers.get("X-Frame-Options") == "DENY", path  # before: none of them
        assert "frame-ancestors 'none'" in reply.headers.get("Content-Security-Policy", ""), path
        assert reply.headers["X-Content-Type-Options"] == "nosniff" and "Strict-Transport-Security" not in reply.headers
        reply.close()


def test_https_deployments_get_strict_transport_security(inst):
    inst.settings.update(SECURE_COOKIES=True)
    client = create_app({"TESTING": True}, instance=inst).test_client()
    for path in ("/", "/socket.io/?EIO=4&transport=polling"):
        with client.get(path, base_url="https://localhost") as reply:
            assert reply.headers["Strict-Transport-Security"] == "max-age=31536000", path


def test_templates_and_scripts_hold_no_inline_script_or_style():
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.IGNORECASE)
    handler = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
    style = re.compile(r"<style|\sstyle\s*=", re.IGNORECASE)
    for path in sorted((ROOT / "templates").glob("*.html")):
        text = path.read_text()
        assert not inline_script.search(text), path.name
        assert not handler.search(text), path.name
        assert not style.search(text), path.name
    for path in sorted((ROOT / "static" / "js").glob("*.js")):
        text = path.read_text()
        assert "eval(" not in text and "new Function" not in text and not re.search(r"\son[a-z]+=", text), path.name


# ----------------------------------------------------------------------------- bad input: a clear 4xx, never a 500

def test_bodies_that_are_not_objects_are_a_400(app):
    client = app.test_client()
    _guest(client)
    store = app.extensions["proofquest"].store
    players.register(store, "root", "admin password", role="admin")
    admin = app.test_client()
    _log_in(admin, "root", "admin password")
    for who, path in ((client, "/api/vote"), (app.test_client(), "/auth/login"), (app.test_client(), "/auth/register"),
                      (admin, "/admin/api/expert/1")):
        for body in (b"[]", b'"yes"', b"17", b"null", b"true", b"[" * 30_000 + b"]" * 30_000, b"{",
                     b"[" * 100_000 + b"]" * 100_000):
            reply = who.post(path, data=body, headers={"Content-Type": "application/json",
                                                      "X-CSRFToken": _token(who)})
            assert reply.status_code == (413 if len(body) > 64 * 1024 else 400) and len(reply.data) < 300, (path, body[:10], reply.data[:200])


def test_ids_too_large_for_sqlite_are_a_4xx_and_the_socket_still_acknowledges(app):
    client = app.test_client()
    _guest(client)
    big = 2**63
    for puzzle in (big, str(big), 2**64, 10**40, -1, 1.5, True, "7; DROP TABLE votes"):
        reply = _post(client, "/api/vote", {"puzzle": puzzle, "answer": "yes"})
        assert reply.status_code == 400 and "puzzle must be an integer id" in reply.get_json()["error"]
    assert client.get(f"/puzzle-image/{big}/0/plain.png").status_code == 404
    assert client.get(f"/puzzle-image/1/{big}/plain.png").status_code == 404
    store = app.extensions["proofquest"].store
    players.register(store, "root", "admin password", role="admin")
    admin = app.test_client()
    _log_in(admin, "root", "admin password")
    assert _post(admin, f"/admin/api/expert/{big}", {"decision": "apply"}).status_code == 404
    sio = socketio.test_client(app, flask_test_client=client)
    ack = sio.emit("vote", {"puzzle": big, "answer": "yes"}, callback=True)
    assert ack["ok"] is False and "integer id" in ack["error"]
    assert not sio.emit("next_puzzle", {"exclude": [big]}, callback=True)["ok"]
    assert st.vote_count(store) == 0


def test_a_5_mb_answer_is_refused_with_a_short_message(app):
    client = app.test_client()
    _guest(client)
    huge = "x" * 5_000_000
    reply = _post(client, "/api/vote", {"puzzle": 1, "answer": huge})
    assert reply.status_code == 413 and len(reply.data) < 300
    small = _post(client, "/api/vote", {"puzzle": 1, "answer": "y" * 1000})
    assert small.status_code == 400 and len(small.data) < 300
    sio = socketio.test_client(app, flask_test_client=client)
    ack = sio.emit("vote", {"puzzle": 1, "answer": huge}, callback=True)
    assert ack["ok"] is False and len(json.dumps(ack)) < 300


def test_every_event_gets_an_acknowledgement(app):
    client = app.test_client()
    _guest(client)
    sio = socketio.test_client(app, flask_test_client=client)
    for event, args in (("no_such_event", ({},)), ("vote", ("not a dict",)), ("vote", ({}, {}, 3)),
                        ("watch_leaderboard", ({"period": "x" * 10_000},)), ("connect", ({},)),
                        ("disconnect", ()), ("next_puzzle", ([1, 2],)), ("vote", ({"puzzle": 1, "answer": "yes",
                                                                                      "ms": "soon"},))):
        ack = sio.emit(event, *args, callback=True)
        assert isinstance(ack, dict) and ack["ok"] is False and len(ack["error"]) < 200, (event, ack)
    assert sio.is_connected() and sio.emit("next_puzzle", callback=True)["ok"]


# ----------------------------------------------------------------------------- file modes

def _modes(home: Path) -> dict[str, str]:
    found = {".": oct(stat.S_IMODE(home.stat().st_mode))}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def test_instance_files_are_private_whatever_the_umask(tmp_path):
    from game.app.instance import Instance
    from game.app.settings import load_settings
    old = os.umask(0)
    try:
        inst = Instance(tmp_path / "home", load_settings({"HOME": str(tmp_path / "home")}, environ={}))
        inst.secret_key()
        players.register(inst.store, "ivan", "long password")
        assert inst.cache_dir.is_dir()
        modes = _modes(inst.home)
        inst.store.close()
    finally:
        os.umask(old)
    assert {"proofquest.sqlite", "proofquest.sqlite-wal", "proofquest.sqlite-shm", "secret_key"} <= set(modes)
    assert {name: m for name, m in modes.items() if m != ("0o700" if (tmp_path / "home" / name).is_dir()
                                                          else "0o600")} == {}


@pytest.mark.slow
def test_the_command_line_writes_the_whole_instance_privately_under_umask_0(tmp_path):
    home = tmp_path / "home"
    subprocess.run([sys.executable, str(ROOT / "run.py"), "--home", str(home), "demo", "--shape", "8,48,48"],
                   cwd=ROOT, check=True, capture_output=True, preexec_fn=lambda: os.umask(0), timeout=300,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    modes = _modes(home)
    assert len(modes) > 10
    assert {name: m for name, m in modes.items() if m != ("0o700" if (home / name).is_dir() else "0o600")} == {}


# ----------------------------------------------------------------------------- a real server: Origin, raw frames

@pytest.fixture
def served(home, inst):
    from conftest import running_server
    oracle_puzzles(inst)
    with running_server(home, ALLOWED_ORIGINS="https://proxy.example") as url:
        yield url


def _guest_cookie(url: str) -> str:
    import requests
    with requests.Session() as http:
        token = http.get(f"{url}/auth/csrf", timeout=10).json()["csrf_token"]
        http.post(f"{url}/auth/guest", headers={"X-CSRFToken": token, "Accept": "application/json"}, timeout=10)
        return "; ".join(f"{k}={v}" for k, v in http.cookies.items())


def test_socket_connections_from_other_sites_are_refused(served):
    """Engine.IO checks the Origin of every request before its transport: polling shows it for both."""
    import socketio as sio_client
    cookie = _guest_cookie(served)
    host = served.split("//", 1)[1]
    for origin, allowed in ((None, True), (served, True), (f"https://{host}", True), ("https://proxy.example", True),
                            ("http://evil.example", False), ("null", False), (f"http://{host}.evil.example", False),
                            (f"http://evil.example/{host}", False)):
        client = sio_client.Client(reconnection=False)
        try:
            client.connect(served, headers={"Cookie": cookie, **({"Origin": origin} if origin else {})},
                           transports=["polling"], wait_timeout=10)
            connected = client.connected
            client.disconnect()
        except sio_client.exceptions.ConnectionError:
            connected = False
        assert connected == allowed, origin


def _raw_socket(url: str, cookie: str):
    import simple_websocket
    ws = simple_websocket.Client.connect(url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket",
                                         headers={"Cookie": cookie})
    # "40" goes out before the open packet is read: simple_websocket's client leaves a frame that came in the
    # same read as the handshake's reply (as gevent's server sends them) unread until more data arrives
    ws.send("40")
    assert ws.receive(timeout=10).startswith("0")  # Engine.IO open
    assert ws.receive(timeout=10).startswith("40")  # Socket.IO connect
    return ws


def _ack(ws, number: int) -> dict:
    while True:
        reply = ws.receive(timeout=10)
        if reply.startswith(f"43{number}"):
            return json.loads(reply[2 + len(str(number)):])[0]


def test_an_event_named_star_or_unknown_is_acknowledged_as_unknown(served):
    cookie = _guest_cookie(served)
    ws = _raw_socket(served, cookie)
    try:
        ws.send('425["*"]')  # the catch-all's own name: it failed inside Flask-SocketIO, with no ack
        assert _ack(ws, 5) == {"ok": False, "error": "unknown event '*': see the list in game/web/events.py"}
        ws.send('426["*",{"a":1}]')
        assert _ack(ws, 6)["ok"] is False
        ws.send('427["nonsense",{"a":1}]')
        ack = _ack(ws, 7)
        assert ack["ok"] is False and "unknown event" in ack["error"] and "nonsense" in ack["error"]
    finally:
        ws.close()


def test_malformed_frames_are_survived_and_the_next_event_is_acknowledged(served):
    import simple_websocket
    cookie = _guest_cookie(served)
    ws = _raw_socket(served, cookie)
    try:
        for frame in ("42", "42[", '42{"puzzle": 1}', '42["vote"', "4", "42[1]", "42[null]", "42[[]]",
                      "42" + "[" * 100_000 + "]" * 100_000, '43["vote"]', "431[]", '42/nowhere,["vote"]', "45-"):
            ws.send(frame)
        ws.send('427["vote",{"puzzle":1,"answer":"maybe"}]')
        ack = _ack(ws, 7)
        assert ack["ok"] is False and "unknown answer" in ack["error"]
        ws.send("x")  # not an Engine.IO packet at all: the server closes this connection
        with pytest.raises(simple_websocket.ConnectionClosed):
            while True:
                ws.receive(timeout=10)
    finally:
        try:
            ws.close()
        except simple_websocket.ConnectionClosed:
            pass
    again = _raw_socket(served, cookie)
    again.send('423["next_puzzle",{}]')
    assert _ack(again, 3)["ok"] is True
    again.close()


def test_a_malformed_event_frame_that_asks_for_an_acknowledgement_gets_one(served):
    """python-socketio raised on these and Engine.IO only logged it: the client waited for an ack that never
    came. Each is now answered as malformed, and the connection goes on."""
    cookie = _guest_cookie(served)
    ws = _raw_socket(served, cookie)
    try:
        frames = {1: "421", 2: "422[", 3: '423{"puzzle": 1}', 4: '424["vote"', 5: "425[]", 6: '426["vote",',
                  7: "427[[]]", 8: "428" + "[" * 100_000 + "]" * 100_000, 9: '42/?x=1,9["vote"'}
        for number, frame in frames.items():
            ws.send(frame)
            ack = _ack(ws, number)
            assert ack["ok"] is False and "not a well-formed Socket.IO event" in ack["error"], (frame, ack)
        # a binary event whose attachment never comes: the next text frame ends it, and is read as itself
        ws.send('451-11["vote",{"_placeholder":true,"num":0}]')
        ws.send('4212["next_puzzle",{}]')
        assert "not a well-formed" in _ack(ws, 11)["error"]
        assert _ack(ws, 12)["ok"] is True
        ws.send('4213["vote",{"puzzle":1,"answer":"maybe"}]')
        ack = _ack(ws, 13)
        assert ack["ok"] is False and "unknown answer" in ack["error"]
    finally:
        ws.close()


def test_an_event_that_fails_on_the_server_is_answered_as_a_failure_not_as_malformed(app, monkeypatch, caplog):
    """A well-formed event whose handling raises outside the handlers' own guard (in the library's dispatch)
    is acknowledged as the server's failure, and logged with its traceback."""
    client = app.test_client()
    _guest(client)
    sock = socketio.test_client(app, flask_test_client=client)
    server = socketio.server

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the dispatch")

    monkeypatch.setattr(server, "_trigger_event", broken)
    # (Engine.IO hands its message handler the frame without its own packet type, the leading 4)
    server.eio.handlers["message"](sock.eio_sid, '27["next_puzzle",{}]')
    assert sock.acks["args"] == [{"ok": False, "error": "the server failed on this event; it has been logged"}]
    assert "a bug in the dispatch" in caplog.text
    sock.acks = None
    server.eio.handlers["message"](sock.eio_sid, '28["next_puzzle"')
    assert "not a well-formed" in sock.acks["args"][0]["error"]
    monkeypatch.undo()
    sock.disconnect()
