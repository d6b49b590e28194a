"""Malformed, oversized, wrong-typed and forged calls to every route and Socket.IO event.

Shared by the property test (``tests/test_fuzz_web.py``) and the benchmark
(``bench/bench_fuzz.py``). A case is drawn with hypothesis, sent through
Flask's test client or Flask-SocketIO's test client as one of the
identities (anonymous, guest, player, teacher, admin), and judged:
no 5xx answer, an acknowledgement for every event, and the database
unchanged by every refused call.
"""

from __future__ import annotations

import json
import re
import urllib.parse

from hypothesis import strategies as hs
from werkzeug.security import generate_password_hash

ROLES = ("anonymous", "guest", "player", "teacher", "admin")
FORGED = ("forged cookie", "forged token")  # a session cookie signed with another key; a signed one with a made-up token
FIELDS = ("puzzle", "answer", "ms", "ticket", "exclude", "period", "decision", "username", "password", "next", "role",
          "code", "nickname", "class", "seconds", "puzzle_set", "name")
BIG = "x" * 5_000_000  # a 5 MB answer
DEEP = b"[" * 100_000 + b"]" * 100_000
RAW_BODIES = (DEEP, b'{"puzzle": ' + DEEP + b"}", b"{", b"\xff\xfe\x00", b"null", b"[]", b'"yes"', b"17",
              b"1e999999", b'{"puzzle": 1e999}', b'{"puzzle": NaN}', b"{}" * 1000)
IDS = (0, 1, 2, 3, 5, 17, -1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40)
TEXTS = ("yes", "no", "unsure", "apply", "reject", "all", "week", "1", "9223372036854775808", "boss\n", "a" * 300,
         "/%09/evil.example", "//evil.example", "https://evil.example", "/\\evil.example", "\x00", "<script>")

leaves = hs.one_of(hs.none(), hs.booleans(), hs.integers(), hs.sampled_from(IDS), hs.floats(),
                   hs.text(max_size=40), hs.sampled_from(TEXTS), hs.integers(1, 30))
json_values = hs.recursive(leaves, lambda kids: hs.lists(kids, max_size=4)
                           | hs.dictionaries(hs.one_of(hs.sampled_from(FIELDS), hs.text(max_size=8)), kids,
                                             max_size=4), max_leaves=12)
field_objects = hs.dictionaries(hs.sampled_from(FIELDS), hs.one_of(leaves, json_values, hs.just(BIG)), max_size=5)
payloads = hs.one_of(field_objects, field_objects, json_values)


def path_value(converter: str | None):
    if converter in ("int", "id"):
        return hs.one_of(hs.sampled_from(IDS).map(str), hs.integers(0, 40).map(str),
                         hs.sampled_from(["abc", "1e3", "0x1", "01", "%00"]))
    return hs.one_of(hs.sampled_from(["plain", "overlay", "truth", "x" * 300, "..", "%00", "a%2Fb"]),
                     hs.text(hs.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=20)
                     .map(lambda t: urllib.parse.quote(t, safe="")))


PLACEHOLDER = re.compile(r"<(?:([a-z_]+)(?:\([^)]*\))?:)?([a-z_]+)>")


def routes(app) -> list[tuple[str, str]]:
    """(method, rule) for every route but static files."""
    return sorted({(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
                   for method in rule.methods - {"HEAD", "OPTIONS"}})


def events(socketio) -> list[str]:
    return sorted(e for e in socketio.server.handlers.get("/", {}) if e not in ("connect", "disconnect", "*"))


@hs.composite
def rest_cases(draw, route_list):
    method, rule = draw(hs.sampled_from(route_list))
    path = PLACEHOLDER.sub(lambda m: draw(path_value(m.group(1))), rule)
    query = draw(hs.dictionaries(hs.sampled_from(["next", "period", "exclude", "x"]),
                                 hs.one_of(hs.sampled_from(TEXTS), hs.text(max_size=20)), max_size=3))
    kind = draw(hs.sampled_from(["json", "json", "json", "raw", "form", "none", "big"]))
    if kind == "json":
        body = json.dumps(draw(payloads)).encode()
    elif kind == "raw":
        body = draw(hs.sampled_from(RAW_BODIES))
    elif kind == "form":
        body = urllib.parse.urlencode(draw(hs.dictionaries(hs.sampled_from(FIELDS), hs.text(max_size=30),
                                                           max_size=4))).encode()
    elif kind == "big":
        body = json.dumps({"puzzle": 1, "answer": BIG, "username": BIG, "password": BIG,
                           "decision": BIG}).encode()
    else:
        body = None
    content_type = {"form": "application/x-www-form-urlencoded", "none": None}.get(kind, "application/json")
    if draw(hs.integers(0, 9)) == 0:
        content_type = draw(hs.sampled_from(["text/plain", "application/json; charset=latin-1", "multipart/form-data"]))
    return {"identity": draw(hs.sampled_from(ROLES + FORGED)), "method": method, "path": path, "query": query,
            "body": body, "content_type": content_type, "csrf": draw(hs.sampled_from(["valid"] * 4 + ["missing", "forged"])),
            "accept_json": draw(hs.booleans())}


@hs.composite
def socket_cases(draw, event_list):
    event = draw(hs.one_of(hs.sampled_from(event_list), hs.sampled_from(["connect", "disconnect", "message", "json"]),
                           hs.text(min_size=1, max_size=12)))
    args = draw(hs.lists(hs.one_of(payloads, hs.just(BIG)), max_size=3))
    return {"identity": draw(hs.sampled_from(ROLES[1:])), "event": event, "args": args}


def db_dump(store) -> dict[str, list]:
    tables = [r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    return {t: [tuple(r.values()) for r in store.query(f'SELECT * FROM "{t}" ORDER BY rowid')] for t in tables}


def short(value, n: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n] + f"...({len(text)} chars)"


class Identities:
    """One Flask test client per role, logged in (again) as that role before each case."""

    PASSWORD = "fuzzing password"

    def __init__(self, app, socketio):
        from game.app import store as st
        self.app, self.socketio = app, socketio
        self.store = app.extensions["proofquest"].store
        cheap = generate_password_hash(self.PASSWORD, method="pbkdf2:sha256:1")  # a fast hash keeps cases fast
        for role in ("player", "teacher", "admin"):
            if st.player_credentials(self.store, f"fuzz-{role}") is None:
                st.create_player(self.store, f"fuzz-{role}", cheap, role=role)
        self.clients = {role: app.test_client() for role in ROLES + FORGED}
        self.sockets: dict = {}

    def token(self, client) -> str:
        return client.get("/auth/csrf").get_json()["csrf_token"]

    def _me(self, client) -> dict | None:
        reply = client.get("/api/me", headers={"Accept": "application/json"})
        return reply.get_json()["player"] if reply.status_code == 200 else None

    def client(self, role: str):
        """The test client of ``role``, logged in as it (or logged out for anonymous)."""
        client = self.clients[role]
        me = self._me(client)
        headers = {"Accept": "application/json"}
        if role == "forged cookie":
            client.set_cookie("session", "eyJ0b2tlbiI6ImZvcmdlZCJ9.aAAAAA.forged-signature-forged-signature")
        elif role == "forged token":
            with client.session_transaction() as session:
                session["token"] = "made-up"
                session["player_id"] = 1
        elif role == "anonymous":
            if me is not None:
                client.post("/auth/logout", headers={**headers, "X-CSRFToken": self.token(client)})
        elif role == "guest":
            if me is None or not me["is_guest"]:
                reply = client.post("/auth/guest", headers={**headers, "X-CSRFToken": self.token(client)})
                assert reply.status_code == 200, reply.data[:300]
        elif me is None or me["username"] != f"fuzz-{role}":
            reply = client.post("/auth/login", json={"username": f"fuzz-{role}", "password": self.PASSWORD},
                                headers={**headers, "X-CSRFToken": self.token(client)})
            assert reply.status_code == 200, reply.data[:300]
        return client

    def socket(self, role: str):
        client = self.client(role)
        sio = self.sockets.get(role)
        if sio is None or not sio.is_connected() or getattr(sio, "cookie_owner", None) != self._me(client)["id"]:
            if sio is not None and sio.is_connected():
                sio.disconnect()
            sio = self.socketio.test_client(self.app, flask_test_client=client)
            sio.cookie_owner = self._me(client)["id"]
            self.sockets[role] = sio
        return sio


def run_rest_case(ids: Identities, case: dict) -> list[str]:
    """Send one request; the list of what went wrong (empty when nothing did)."""
    client = ids.client(case["identity"])
    headers = {}
    if case["csrf"] == "valid":
        headers["X-CSRFToken"] = ids.token(client)
    elif case["csrf"] == "forged":
        headers["X-CSRFToken"] = "forged." + "A" * 40
    if case["content_type"]:
        headers["Content-Type"] = case["content_type"]
    if case["accept_json"]:
        headers["Accept"] = "application/json"
    before = db_dump(ids.store)
    where = f"{case['method']} {case['path'][:60]}"
    try:
        reply = client.open(case["path"], method=case["method"], query_string=case["query"], data=case["body"],
                            headers=headers)
    except Exception as exc:  # noqa: BLE001  TESTING propagates what would have been a 500
        return [f"{where}: 500 ({type(exc).__name__})"]
    problems = []
    if reply.status_code >= 500:
        problems.append(f"{where}: {reply.status_code}")
    if reply.status_code >= 400 and db_dump(ids.store) != before:
        problems.append(f"{where}: refused with {reply.status_code} but changed the database")
    if len(reply.data) > 20_000 and reply.status_code >= 400:
        problems.append(f"{where}: a {len(reply.data)}-byte error answer")
    location = reply.headers.get("Location", "")
    if urllib.parse.urlsplit(location).netloc not in ("", "localhost"):
        problems.append(f"{where}: redirects off-site to {location[:60]}")
    reply.close()
    return problems


def run_socket_case(ids: Identities, case: dict) -> list[str]:
    sio = ids.socket(case["identity"])
    before = db_dump(ids.store)
    where = f"event {case['event'][:30]!r}"
    try:
        ack = sio.emit(case["event"], *case["args"], callback=True)
    except Exception as exc:  # noqa: BLE001  the server let an exception out of a handler
        return [f"{where}: {type(exc).__name__} {short(str(exc), 60)}"]
    if not isinstance(ack, dict) or not isinstance(ack.get("ok"), bool):
        return [f"{where}: no acknowledgement ({short(ack, 40)})"]
    problems = []
    if not ack["ok"] and db_dump(ids.store) != before:
        problems.append(f"{where}: refused but changed the database")
    if len(json.dumps(ack)) > 20_000:
        problems.append(f"{where}: a {len(json.dumps(ack))}-byte acknowledgement")
    return problems
