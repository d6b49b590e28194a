"""The README's role table is complete and true: every route and event, tried as every role.

A row says the lowest role a route or event needs (anonymous < guest <
player < teacher < admin). Each row is called by a fresh client of each role
with placeholder arguments; a role below the row's must be refused (401, 403,
a redirect to log in or to the home page, a refused socket), a role at or above it must not be
(any other answer under 500: placeholder arguments may well be a 400).
"""

import re
from pathlib import Path

import pytest
from conftest import oracle_puzzles
from werkzeug.security import generate_password_hash

from game.app import store as st
from game.web import create_app, socketio
from game.web.auth import ROLE_ORDER

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "role password"


def role_table() -> dict[str, str]:
    """``{"GET /path" or "event name": role}`` from the README section "Who may call what"."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Who may call what", 1)[1].split("\n## ", 1)[0]
    return {m.group(1).replace("`", ""): m.group(2)
            for m in re.finditer(r"^\| (event `[a-z_]+`|`[A-Z]+ [^`]+`) \| ([a-z]+) \|$", section, re.MULTILINE)}


@pytest.fixture
def app(inst):
    oracle_puzzles(inst)
    st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
    cheap = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")
    for role in ("player", "teacher", "admin"):
        st.create_player(inst.store, f"role-{role}", cheap, role=role)
    return create_app({"TESTING": True, "LEADERBOARD_INTERVAL": 3600}, instance=inst)


def _client(app, role: str):
    client = app.test_client()
    token = client.get("/auth/csrf").get_json()["csrf_token"]
    headers = {"X-CSRFToken": token, "Accept": "application/json"}
    if role == "guest":
        assert client.post("/auth/guest", headers=headers).status_code == 200
    elif role != "anonymous":
        assert client.post("/auth/login", json={"username": f"role-{role}", "password": PASSWORD},
                           headers=headers).status_code == 200
    return client


def _refused_route(app, role: str, method: str, rule: str) -> bool:
    client = _client(app, role)
    path = re.sub(r"<(?:id|int):[a-z_]+>", "1", rule)
    path = re.sub(r"<any\(([a-z_]+)[^>]*>", r"\1", path)
    path = re.sub(r"<(?:string:)?[a-z_]+>", "plain", path)
    headers = {"X-CSRFToken": client.get("/auth/csrf").get_json()["csrf_token"]}
    with client.open(path, method=method, json={} if method == "POST" else None, headers=headers) as reply:
        assert reply.status_code < 500, (role, method, rule, reply.status_code)
        # refused pages redirect to log in, or (a player's own pages) to the home page, one click from a guest
        to_login = reply.status_code == 302 and reply.headers["Location"].startswith(("/auth/login", "/?next="))
        return reply.status_code in (401, 403) or to_login


def _refused_event(app, role: str, event: str) -> bool:
    sio = socketio.test_client(app, flask_test_client=_client(app, role))
    if not sio.is_connected():
        return True
    if event == "connect":
        return False
    ack = sio.emit(event, {}, callback=True)
    assert isinstance(ack, dict), (role, event, ack)
    return not ack["ok"] and ("log in" in ack["error"] or "role" in ack["error"])


def test_the_role_table_lists_every_route_and_event(app):
    routes = {f"{method} {rule.rule}" for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    events = {f"event {e}" for e in socketio.server.handlers["/"] if e not in ("*", "disconnect")}
    table = set(role_table())
    assert routes | events == table, (f"missing from the README's role table: {sorted((routes | events) - table)}; "
                                      f"listed but gone: {sorted(table - routes - events)}")
    assert set(role_table().values()) <= set(ROLE_ORDER)


@pytest.mark.parametrize("role", ["anonymous", "guest", "player", "teacher", "admin"])
def test_each_row_holds_for_each_role(app, role):
    wrong = []
    for row, needs in role_table().items():
        key = row
        if key.startswith("event "):
            refused = _refused_event(app, role, key.split(" ", 1)[1])
        else:
            method, rule = key.split(" ", 1)
            refused = _refused_route(app, role, method, rule)
        if refused != (ROLE_ORDER.index(role) < ROLE_ORDER.index(needs)):
            wrong.append(f"{key} as {role}: {'refused' if refused else 'allowed'}, the table says it needs {needs}")
    assert not wrong, "\n".join(wrong)
