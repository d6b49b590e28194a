"""Classes through the web: Flask's test client for pages and forms, Flask-SocketIO's test client for
the board and the play, a real SQLite file underneath."""

import csv
import io
import re
import time

import pytest
import segno
from conftest import oracle_puzzles

from game.app import players
from game.app import store as st
from game.web import create_app, socketio

TEACHER = ("tess", "teacher password")


@pytest.fixture
def app(inst):
    oracle_puzzles(inst)
    st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
    players.register(inst.store, *TEACHER, role="teacher")
    return create_app({"TESTING": True, "LEADERBOARD_INTERVAL": 0.05}, instance=inst)


def _store(app):
    return app.extensions["proofquest"].store


def _token(client):
    return client.get("/auth/csrf").get_json()["csrf_token"]


def _post(client, url, body=None):
    return client.post(url, json=body or {}, headers={"X-CSRFToken": _token(client), "Accept": "application/json"})


def _log_in(app, username, password):
    client = app.test_client()
    assert _post(client, "/auth/login", {"username": username, "password": password}).status_code == 200
    return client


def _teacher_with_class(app, name="Year 9"):
    client = _log_in(app, *TEACHER)
    reply = _post(client, "/classes", {"name": name})
    assert reply.status_code == 200, reply.get_json()
    return client, reply.get_json()["class"]["id"], reply.get_json()["code"]


def _join(app, code, nickname, client=None):
    client = client or app.test_client()
    return client, _post(client, "/join", {"code": code, "nickname": nickname})


def _sio(app, client):
    return socketio.test_client(app, flask_test_client=client)


def _boards(sio, class_id):
    return [m["args"][0] for m in sio.get_received() if m["name"] == "class_board"
            and m["args"][0]["class"]["id"] == class_id]


def _wait_for_board(sio, class_id, check, seconds=5.0):
    deadline = time.monotonic() + seconds
    seen = []
    while time.monotonic() < deadline:
        seen += _boards(sio, class_id)
        if seen and check(seen[-1]):
            return seen[-1]
        socketio.sleep(0.05)
    raise AssertionError(f"the board never showed it; last: {seen[-1] if seen else None}")


def test_a_round_runs_from_join_to_podium_and_its_csv_matches_the_votes(app):
    teacher, class_id, code = _teacher_with_class(app)
    board = _sio(app, teacher)
    assert board.emit("watch_class", {"class": class_id}, callback=True) == {"ok": True, "class": class_id}
    assert _boards(board, class_id)[-1]["round"] is None

    students = {}
    for nickname in ("Ada", "Brook", "Cy"):
        client, reply = _join(app, code, nickname)
        assert reply.status_code == 200 and reply.get_json()["nickname"] == nickname
        students[nickname] = client
    _, clash = _join(app, code.lower(), "ADA")
    assert clash.status_code == 400 and clash.get_json()["error"] == \
        "the nickname 'ADA' is taken in this class; choose another"
    assert len(st.members(_store(app), class_id)) == 3
    _wait_for_board(board, class_id, lambda b: b["joined"] == 3)

    early = _sio(app, students["Ada"])
    assert early.emit("next_puzzle", callback=True) == {
        "ok": False, "error": "the round has not started yet: wait for your teacher to start it"}

    started = _post(teacher, f"/classes/{class_id}/rounds", {"seconds": 3, "puzzle_set": "mixed"})
    assert started.status_code == 200, started.get_json()
    round_id = started.get_json()["round"]["id"]
    socks = {name: _sio(app, client) for name, client in students.items()}
    for name, answers in (("Ada", 3), ("Brook", 2), ("Cy", 1)):
        for _ in range(answers):
            puzzle = socks[name].emit("next_puzzle", callback=True)["puzzle"]
            ack = socks[name].emit("vote", {"puzzle": puzzle["id"], "answer": "yes", "ms": 1200,
                                            "ticket": puzzle["ticket"]}, callback=True)
            assert ack["ok"], ack
    live = _wait_for_board(board, class_id, lambda b: b["round"] and b["round"]["state"] == "running"
                           and sum(r["answered"] for r in b["ranking"]) == 6)
    assert {r["nickname"]: r["answered"] for r in live["ranking"]} == {"Ada": 3, "Brook": 2, "Cy": 1}
    assert [r["rank"] for r in live["ranking"]] == [1, 2, 3]

    over = _wait_for_board(board, class_id, lambda b: b["round"]["state"] == "ended", seconds=8)
    assert [p["nickname"] for p in over["podium"]] == [r["nickname"] for r in over["ranking"][:3]]
    late = socks["Ada"].emit("next_puzzle", callback=True)
    assert late == {"ok": False, "error": "the round has ended: wait for your teacher to start the next one"}
    votes_before = st.vote_count(_store(app))
    any_puzzle = st.puzzles(_store(app))[0]["id"]
    refused = socks["Brook"].emit("vote", {"puzzle": any_puzzle, "answer": "no"}, callback=True)
    assert refused["ok"] is False and "round has ended" in refused["error"]
    assert st.vote_count(_store(app)) == votes_before

    answers = list(csv.DictReader(io.StringIO(
        teacher.get(f"/classes/{class_id}/rounds/{round_id}/answers.csv").get_data(as_text=True))))
    in_db = _store(app).query(
        "SELECT v.puzzle_id, v.answer, v.ms, m.nickname FROM votes v JOIN class_members m ON m.player_id = v.player_id"
        " WHERE m.class_id = ? ORDER BY v.created, v.id", (class_id,))
    assert [(int(a["puzzle"]), a["answer"], int(a["ms"]), a["nickname"]) for a in answers] == \
        [(v["puzzle_id"], v["answer"], v["ms"], v["nickname"]) for v in in_db]
    per_student = list(csv.DictReader(io.StringIO(
        teacher.get(f"/classes/{class_id}/rounds/{round_id}/students.csv").get_data(as_text=True))))
    assert {s["nickname"]: int(s["answers"]) for s in per_student} == {"Ada": 3, "Brook": 2, "Cy": 1}
    assert [c["nickname"] for c in _store(app).query("SELECT nickname FROM class_members")] == ["Ada", "Brook", "Cy"]


def test_a_student_of_another_class_cannot_read_the_board_or_join_the_round(app):
    teacher, class_a, code_a = _teacher_with_class(app, "A")
    _, _, code_b = _teacher_with_class(app, "B")
    outsider, reply = _join(app, code_b, "Otto")
    assert reply.status_code == 200
    assert _post(teacher, f"/classes/{class_a}/rounds", {"seconds": 60, "puzzle_set": "mixed"}).status_code == 200

    assert outsider.get(f"/classes/{class_a}/board", headers={"Accept": "application/json"}).status_code == 403
    assert outsider.get(f"/classes/{class_a}/board").status_code == 403
    sio = _sio(app, outsider)
    sio.get_received()
    assert sio.emit("watch_class", {"class": class_a}, callback=True)["ok"] is False
    assert not [m for m in sio.get_received() if m["name"] == "class_board"]
    assert sio.emit("next_puzzle", callback=True)["error"].startswith("the round has not started yet")

    member_a, _ = _join(app, code_a, "Ann")
    sio_a = _sio(app, member_a)
    assert sio_a.emit("watch_class", {"class": class_a}, callback=True)["ok"]
    assert member_a.get(f"/classes/{class_a}/board").status_code == 200
    assert member_a.get(f"/classes/{class_a}", headers={"Accept": "application/json"}).status_code == 403
    assert member_a.get(f"/classes/{class_a}/rounds/1/answers.csv").status_code == 403


def test_teachers_see_only_their_own_classes_and_admins_see_all(app):
    _, class_a, _ = _teacher_with_class(app, "A")
    players.register(_store(app), "other", "teacher password", role="teacher")
    players.register(_store(app), "root", "admin password", role="admin")
    other = _log_in(app, "other", "teacher password")
    assert other.get(f"/classes/{class_a}", headers={"Accept": "application/json"}).status_code == 403
    assert other.get(f"/classes/{class_a}/board", headers={"Accept": "application/json"}).status_code == 403
    assert other.get("/classes", headers={"Accept": "application/json"}).get_json()["classes"] == []
    admin = _log_in(app, "root", "admin password")
    assert [c["id"] for c in admin.get("/classes", headers={"Accept": "application/json"}).get_json()["classes"]] \
        == [class_a]
    assert admin.get(f"/classes/{class_a}").status_code == 200
    player = app.test_client()
    _post(player, "/auth/guest")
    assert player.get("/classes", headers={"Accept": "application/json"}).status_code == 403
    assert _post(player, "/classes", {"name": "mine"}).status_code == 403


@pytest.mark.parametrize("code, message", [
    ("ZZZZZZ", "no class has the code ZZZZZZ; check it on your teacher's screen"),
    ("HELLO!", "'HELLO!' is not a class code: codes have 6 letters and digits, like the one on your teacher's screen"),
    ("", "type the class code shown by your teacher"),
])
def test_wrong_codes_are_refused_clearly(app, code, message):
    _teacher_with_class(app)
    _, reply = _join(app, code, "Zed")
    assert reply.status_code == 400 and reply.get_json()["error"] == message
    assert _store(app).scalar("SELECT COUNT(*) FROM class_members") == 0


def test_expired_and_closed_codes_are_refused_but_students_who_joined_come_back(app):
    teacher, class_id, code = _teacher_with_class(app)
    ada, _ = _join(app, code, "Ada")
    with _store(app).write() as db:
        db.conn.execute("UPDATE join_codes SET expires = ? WHERE code = ?", (time.time() - 1, code))
    _, expired = _join(app, code, "Bea")
    assert expired.status_code == 400 and expired.get_json()["error"] == \
        f"the code {code} has expired; ask your teacher for a new one"
    fresh = _post(teacher, f"/classes/{class_id}/code").get_json()["code"]
    assert fresh != code
    _, old = _join(app, code, "Bea")
    assert "is closed" in old.get_json()["error"]
    assert _post(teacher, f"/classes/{class_id}/code/close").status_code == 200
    _, closed = _join(app, fresh, "Bea")
    assert closed.status_code == 400 and closed.get_json()["error"] == \
        f"the code {fresh} is closed: your teacher stopped new students joining with it"
    again = _post(teacher, f"/classes/{class_id}/code/close")
    assert again.status_code == 400 and again.get_json()["error"] == "this class has no open join code"
    _, back = _join(app, fresh, "Whoever", client=ada)  # the device that joined: same student, code or not
    assert back.status_code == 200 and back.get_json()["rejoined"] and back.get_json()["nickname"] == "Ada"
    assert [m["nickname"] for m in st.members(_store(app), class_id)] == ["Ada"]


@pytest.mark.parametrize("nickname, message", [
    ("", "choose a nickname"),
    ("   ", "choose a nickname"),
    ("x" * 17, "a nickname has at most 16 characters"),
    ("A", "a nickname has at least 2 characters"),
    ("Sh1t head", "please choose another nickname: that one is not allowed here"),
    ("f u c k", "please choose another nickname: that one is not allowed here"),
    ("<b>hi</b>", "a nickname may use only letters, digits, spaces, dots, hyphens and apostrophes"),
    (["Ada"], "choose a nickname"),
])
def test_bad_nicknames_are_refused_and_nothing_is_made(app, nickname, message):
    _, _, code = _teacher_with_class(app)
    players_before = _store(app).scalar("SELECT COUNT(*) FROM players")
    client, reply = _join(app, code, nickname)
    assert reply.status_code == 400 and reply.get_json()["error"] == message
    assert _store(app).scalar("SELECT COUNT(*) FROM players") == players_before
    assert client.get("/api/me").status_code == 401


def test_joining_twice_on_one_device_rejoins_as_the_same_student(app):
    _, class_id, code = _teacher_with_class(app)
    client, first = _join(app, code, "Ada")
    client.post("/auth/logout", headers={"X-CSRFToken": _token(client), "Accept": "application/json"})
    _, second = _join(app, code, "Someone else", client=client)
    assert second.status_code == 200 and second.get_json()["rejoined"]
    assert second.get_json()["player"]["id"] == first.get_json()["player"]["id"]
    assert second.get_json()["message"] == "You have already joined Year 9 as Ada: welcome back!"
    assert client.get("/api/me").get_json()["player"]["id"] == first.get_json()["player"]["id"]
    assert len(st.members(_store(app), class_id)) == 1


def test_a_round_started_twice_and_rounds_of_other_classes_are_refused(app):
    teacher, class_id, _ = _teacher_with_class(app)
    assert _post(teacher, f"/classes/{class_id}/rounds", {"minutes": 2, "puzzle_set": "assessment"}).status_code == 200
    twice = _post(teacher, f"/classes/{class_id}/rounds", {"minutes": 2, "puzzle_set": "assessment"})
    assert twice.status_code == 400 and re.fullmatch(r"round \d+ is still running \(\d+ s left\); end it first",
                                                     twice.get_json()["error"])
    for body, message in (({"seconds": 1, "puzzle_set": "mixed"}, "a round lasts 3 s to 3 h"),
                          ({"seconds": "soon", "puzzle_set": "mixed"}, "a round lasts a whole number of seconds"),
                          ({"seconds": 60, "puzzle_set": "hard"}, "unknown puzzle set 'hard'"),
                          ({"minutes": "inf", "puzzle_set": "mixed"}, "a round lasts a number of minutes"),
                          ({"minutes": 1e308, "puzzle_set": "mixed"}, "a round lasts a number of minutes"),
                          ({"seconds": 60, "puzzle_set": ["mixed"]}, "unknown puzzle set"),
                          ({"seconds": 60, "puzzle_set": {}}, "unknown puzzle set")):
        reply = _post(teacher, f"/classes/{class_id}/rounds", body)
        assert reply.status_code == 400 and reply.get_json()["error"].startswith(message)
    assert len(st.rounds(_store(app), class_id)) == 1
    round_id = st.rounds(_store(app), class_id)[0]["id"]
    assert _post(teacher, f"/classes/{class_id}/rounds/{round_id}/end").status_code == 200
    ended = _post(teacher, f"/classes/{class_id}/rounds/{round_id}/end")
    assert ended.status_code == 400 and ended.get_json()["error"] == f"round {round_id} has already ended"
    assert _post(teacher, f"/classes/{class_id}/rounds/999/end").get_json()["error"] == "this class has no round 999"


def test_the_teacher_renames_and_removes_a_student(app):
    teacher, class_id, code = _teacher_with_class(app)
    ada, joined = _join(app, code, "Ada")
    pid = joined.get_json()["player"]["id"]
    _join(app, code, "Bob")
    clash = _post(teacher, f"/classes/{class_id}/students/{pid}/rename", {"nickname": "bob"})
    assert clash.status_code == 400 and "taken" in clash.get_json()["error"]
    assert _post(teacher, f"/classes/{class_id}/students/{pid}/rename", {"nickname": "Ada L"}).get_json()["nickname"] \
        == "Ada L"
    _post(teacher, f"/classes/{class_id}/rounds", {"seconds": 60, "puzzle_set": "mixed"})
    assert _post(teacher, f"/classes/{class_id}/students/{pid}/remove").status_code == 200
    sio = _sio(app, ada)
    assert sio.emit("next_puzzle", callback=True)["error"] == \
        "your teacher took you off this class; join again with the class code"
    assert ada.get(f"/classes/{class_id}/board").status_code == 403
    _, again = _join(app, code, "Ada L", client=ada)  # removed: the device joins afresh, the nickname is free
    assert again.status_code == 200 and not again.get_json()["rejoined"]
    assert again.get_json()["player"]["id"] != pid


def test_practice_rounds_serve_only_gold_puzzles_and_change_nothing(app):
    teacher, class_id, code = _teacher_with_class(app)
    client, _ = _join(app, code, "Ada")
    _post(teacher, f"/classes/{class_id}/rounds", {"seconds": 60, "puzzle_set": "practice"})
    sio = _sio(app, client)
    gold = {p["id"] for p in st.puzzles(_store(app), gold=True)}
    served = []
    while True:
        reply = sio.emit("next_puzzle", callback=True)
        if not reply["ok"]:
            assert "no puzzle is left in this round" in reply["error"]  # (not: new ones come as the crowd decides)
            break
        served.append(reply["puzzle"]["id"])
        assert sio.emit("vote", {"puzzle": reply["puzzle"]["id"], "answer": "yes",
                                 "ticket": reply["puzzle"]["ticket"]}, callback=True)["ok"]
    assert sorted(served) == sorted(gold)
    assert st.edit_count(_store(app), "demo") == 0


def test_the_qr_code_holds_the_join_link(app):
    teacher, class_id, code = _teacher_with_class(app)
    svg = teacher.get(f"/classes/{class_id}/qr.svg")
    assert svg.mimetype == "image/svg+xml"
    expected = segno.make(f"http://localhost/join/{code}", error="m")
    assert _svg_matrix(svg.get_data(as_text=True)) == [list(map(bool, row)) for row in expected.matrix_iter(border=4)]
    _post(teacher, f"/classes/{class_id}/code/close")
    assert teacher.get(f"/classes/{class_id}/qr.svg", headers={"Accept": "application/json"}).status_code == 404


def _svg_matrix(svg: str) -> list[list[bool]]:
    """The dark modules of segno's SVG path (moves and horizontal runs, one module each) read back."""
    size = int(re.search(r'viewBox="0 0 (\d+) (\d+)"', svg).group(1))
    path = re.search(r'<path[^>]*class="qrline"[^>]*\sd="([^"]+)"', svg) or \
        re.search(r'<path[^>]*\sd="([^"]+)"[^>]*class="qrline"', svg)
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for op, args in re.findall(r"([MmHhVv])([^MmHhVv]*)", path.group(1)):
        nums = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", args)]
        if op == "M":
            x, y = nums
        elif op == "m":
            x, y = x + nums[0], y + nums[1]
        elif op == "h":
            for i in range(int(nums[0])):
                grid[int(y)][int(x) + i] = True
            x += nums[0]
    return grid


def test_an_admin_grants_the_teacher_role(app):
    players.register(_store(app), "root", "admin password", role="admin")
    players.register(_store(app), "newbie", "player password")
    player = _log_in(app, "newbie", "player password")
    assert _post(player, "/admin/api/role", {"username": "newbie", "role": "teacher"}).status_code == 403
    admin = _log_in(app, "root", "admin password")
    bad = _post(admin, "/admin/api/role", {"username": "newbie", "role": "king"})
    assert bad.status_code == 400 and bad.get_json()["error"] == "role is one of player, teacher, admin"
    assert _post(admin, "/admin/api/role", {"username": "nobody", "role": "teacher"}).get_json()["error"] == \
        "no player named 'nobody'"
    reply = _post(admin, "/admin/api/role", {"username": "newbie", "role": "teacher"})
    assert reply.status_code == 200 and reply.get_json()["player"]["role"] == "teacher"
    assert player.get("/classes", headers={"Accept": "application/json"}).status_code == 200


def test_class_pages_render_for_people(app):
    teacher, class_id, code = _teacher_with_class(app)
    client, _ = _join(app, code, "Ada")
    started = _post(teacher, f"/classes/{class_id}/rounds", {"seconds": 60, "puzzle_set": "assessment"})
    round_id = started.get_json()["round"]["id"]
    for page in ("/classes", f"/classes/{class_id}", f"/classes/{class_id}/board",
                 f"/classes/{class_id}/rounds/{round_id}"):
        assert teacher.get(page).status_code == 200, page
    for page in ("/class", "/play", f"/classes/{class_id}/board", "/leaderboard", "/me"):
        assert client.get(page).status_code == 200, page
    assert app.test_client().get(f"/join/{code}").status_code == 200
    assert b"Ada" in client.get("/class").data
