"""Classes without a web server: codes, nicknames, rounds, tie-breaks, credited edits, achievements, reports."""

import csv
import random
import sqlite3
import time

import pytest
from conftest import establish, oracle_puzzles, vote

from game.app import players
from game.app import store as st
from game.crowd import achievements as ach
from game.crowd import assignment, class_reports, classes, reports, votes
from game.errors import ProofQuestError


@pytest.fixture
def store(tmp_path):
    s = st.Store(tmp_path / "classes.sqlite")
    yield s
    s.close()


def _class(store, name="Year 9"):
    teacher = players.register(store, f"t{random.randrange(10**6)}", "teacher password", role="teacher")
    cls = classes.create_class(store, teacher, name, code_hours=24)
    return cls, st.current_join_code(store, cls["id"])["code"]


def test_join_codes_are_easy_to_read_aloud_and_typed_codes_are_forgiven(store):
    cls, _ = _class(store)
    codes = [classes.open_code(store, cls["id"], 1, rng=random.Random(i))["code"] for i in range(200)]
    assert not set("".join(codes)) & set("0O1IL")
    assert all(len(c) == classes.CODE_LENGTH for c in codes)
    assert [classes.code_state(st.join_code(store, c)) for c in codes[-2:]] == ["closed", "open"]
    assert classes.normalize_code(" ab-c 2 34 ") == "ABC234"
    with pytest.raises(ProofQuestError, match="is not a class code"):
        classes.normalize_code("ABC10O")


@pytest.mark.parametrize("nickname", ["f.u.c.k", "FUUUCK", "Sh1thead", "b!tch", "big ass", "Ass", "k i l l",
                                      "dumb", "Hitler 88", "nazi"])
def test_rude_nicknames_are_caught_even_disguised(nickname):
    assert classes.is_rude(nickname)


@pytest.mark.parametrize("nickname", ["Class act", "Skillful", "Peacock", "Scrapper", "Hello", "Button", "Grass",
                                      "Dickens", "Cassandra", "Analyst", "Titan", "Document", "Swift Falcon"])
def test_harmless_nicknames_that_hide_a_short_word_pass(nickname):
    assert not classes.is_rude(nickname)
    assert classes.check_nickname(f"  {nickname}  ") == nickname


def test_suggested_nicknames_are_allowed_and_free_in_the_class(store):
    cls, code = _class(store)
    rng = random.Random(0)
    for i in range(30):
        nickname = classes.suggest_nickname(store, cls["id"], rng=rng)
        assert classes.check_nickname(nickname) == nickname
        classes.join(store, code, nickname, f"device-{i}")
    assert len({m["nickname"].lower() for m in st.members(store, cls["id"])}) == 30


def test_a_student_plays_only_while_their_round_runs(store):
    cls, code = _class(store)
    guest = players.create_guest(store)
    assert classes.round_rules(store, guest["id"]) is None
    student = classes.join(store, code, "Ada", "device")["player"]
    with pytest.raises(ProofQuestError, match="has not started yet"):
        classes.round_rules(store, student["id"])
    row = classes.start_round(store, cls["id"], "assessment", 60)
    assert classes.round_rules(store, student["id"]) == classes.PUZZLE_SETS["assessment"]
    classes.end_round(store, cls["id"], row["id"])
    with pytest.raises(ProofQuestError, match="has ended"):
        classes.round_rules(store, student["id"])


def test_rounds_end_by_themselves_once(store):
    cls, _ = _class(store)
    row = classes.start_round(store, cls["id"], "mixed", 3)
    assert st.finish_due_rounds(store) == []
    with store.write() as db:
        db.conn.execute("UPDATE rounds SET ends = ? WHERE id = ?", (time.time() - 1, row["id"]))
    assert [r["id"] for r in st.finish_due_rounds(store)] == [row["id"]]
    assert st.finish_due_rounds(store) == []
    assert not classes.is_running(st.round_(store, row["id"]))


def test_every_leaderboard_breaks_ties_by_who_reached_the_score_first(store):
    cls, code = _class(store)
    a, b, c = (classes.join(store, code, n, f"d{n}")["player"] for n in ("Ann", "Bea", "Cal"))
    for player, t in ((a, 300.0), (b, 100.0), (c, 200.0)):
        st.add_points(store, player["id"], 30, "vote")
        with store.write() as db:
            db.conn.execute("UPDATE point_events SET created = ? WHERE player_id = ?", (t, player["id"]))
            db.conn.execute("UPDATE week_points SET week = ?, reached = ? WHERE player_id = ?",
                            (st.week_of(t), t, player["id"]))
    expected = [b["id"], c["id"], a["id"]]
    assert [r["id"] for r in st.leaderboard(store)] == expected
    assert [r["id"] for r in st.leaderboard(store, week=st.week_of(0.0))] == expected
    assert [r["id"] for r in st.leaderboard(store, class_id=cls["id"])] == expected
    assert [r["player_id"] for r in class_reports.ranking(store, cls["id"], 0.0, 1000.0)] == expected
    assert [r["username"] for r in st.leaderboard(store, class_id=cls["id"])] == ["Bea", "Cal", "Ann"]


def test_an_applied_edit_credits_the_players_whose_counted_votes_decided_it(inst):
    ids, puzzles = oracle_puzzles(inst, gold_every=1000)
    index = next(i for i, p in enumerate(puzzles) if p["kind"] == "merge" and p["truth"])
    against, unsure = players.create_guest(inst.store), players.create_guest(inst.store)
    establish(inst, [against, unsure], 0.7)
    vote(inst, against["id"], ids[index], "no")
    vote(inst, unsure["id"], ids[index], "unsure")
    backers = []
    while not st.edits(inst.store, "demo"):
        backers.append(players.create_guest(inst.store))
        establish(inst, backers[-1:], 0.7)
        vote(inst, backers[-1]["id"], ids[index], "yes")
    assert sorted(st.edits(inst.store, "demo")[-1]["provenance"]["deciders"]) == sorted(b["id"] for b in backers)
    record = reports.player_record(inst, backers[0]["id"])
    assert record["contributions"] == {"edits": 1, "fixed": 1, "wrong": 0, "unknown": 0}
    assert record["edits"][0]["fixed"] is True
    assert reports.player_record(inst, against["id"])["contributions"]["edits"] == 0
    assert reports.player_record(inst, unsure["id"])["contributions"]["edits"] == 0


def test_the_schema_upgrade_credits_edits_made_before_it(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    for migration in st.MIGRATIONS[:2]:
        conn.executescript(migration)
    conn.execute("PRAGMA user_version = 2")
    conn.executescript("""
        INSERT INTO players (id, username, created) VALUES (1, 'a', 0), (2, 'b', 0), (3, 'c', 0);
        INSERT INTO puzzles (id, volume, kind, anchors, supervoxels, segments, location, score, created)
            VALUES (7, 'v', 'merge', '[1,2]', '[]', '[1,2]', '[0,0,0]', 0.5, 0);
        INSERT INTO votes (puzzle_id, player_id, answer, supports_edit, created)
            VALUES (7, 1, 'yes', 1, 10), (7, 2, 'no', 0, 11), (7, 3, 'yes', 1, 30);
        INSERT INTO edits (volume, seq, kind, supervoxels, source, target, author, puzzle_id, created)
            VALUES ('v', 0, 'merge', '[2]', 2, 1, 'consensus', 7, 20);
    """)
    conn.commit()
    conn.close()
    store = st.Store(path)
    assert [e["seq"] for e in st.credited_edits(store, 1)] == [0]
    assert st.credited_edits(store, 2) == [] and st.credited_edits(store, 3) == []  # against it; after it
    store.close()


def _vote(t, *, kind="merge", gold=1, teach=1, truth=1, supports=1, state="open", decision=None):
    """A vote as the store returns it; by default on a teach puzzle (its answer is shown once answered)."""
    return {"created": float(t), "kind": kind, "gold": gold, "teach": teach, "truth": truth,
            "supports_edit": supports, "state": state, "decision": decision}


def test_achievements_reward_right_answers_not_many_answers():
    wrong = [_vote(t, supports=0) for t in range(30)]
    assert ach.earned(wrong, []) == []
    right = [_vote(t) for t in range(20)]
    earned = {a["key"]: a["at"] for a in ach.earned(right, [])}
    assert earned == {"gap-closer": 0.0, "sharp-eye": 9.0, "unbroken": 19.0, "steady-hand": 19.0}
    split = [_vote(0, kind="split", gold=0, teach=0, truth=None, state="retired", decision=1)]
    assert [a["key"] for a in ach.earned(split, [])] == ["merger-spotter"]
    unknown = [_vote(0, gold=0, teach=0, truth=None, state="open")]
    assert ach.earned(unknown, []) == []
    # answers whose truth the player was never shown earn nothing that would tell them which were right
    assert ach.earned([_vote(t, teach=0) for t in range(30)], []) == []
    assert ach.earned([_vote(t, gold=0, teach=0, truth=1) for t in range(30)], []) == []
    fixes = [{"created": float(t), "truth": 1} for t in range(10)] + [{"created": 99.0, "truth": 0}]
    assert [a["key"] for a in ach.earned([], fixes)] == ["fixer"]
    assert ach.contributions(fixes) == {"edits": 11, "fixed": 10, "wrong": 1, "unknown": 0}


def test_mistakes_are_named_as_the_student_saw_them():
    # a true merge answered "no": two seen where there is one; a false merge answered "yes": one where there are two
    assert class_reports.mistake(_vote(0, kind="merge", truth=1, supports=0)) == "split"
    assert class_reports.mistake(_vote(0, kind="merge", truth=0, supports=1)) == "joined"
    # a true split (a merger) answered "yes, one neurite" (keeps it whole): one seen where there are two
    assert class_reports.mistake(_vote(0, kind="split", truth=1, supports=0)) == "joined"
    assert class_reports.mistake(_vote(0, kind="split", truth=0, supports=1)) == "split"
    assert class_reports.mistake(_vote(0, truth=1, supports=1)) is None
    assert class_reports.mistake(_vote(0, truth=1, supports=None)) is None


def test_the_learning_curve_is_accuracy_per_group_of_gold_answers():
    assert class_reports.learning_curve([False] * 5 + [True, True, False, True, True] + [True, True]) == [0.0, 0.8, 1.0]
    assert class_reports.learning_curve([]) == []


def test_the_round_report_follows_the_votes(inst):
    ids, puzzles = oracle_puzzles(inst, teach=True)
    cls, code = _class(inst.store)
    ada, bob = (classes.join(inst.store, code, n, f"d{n}")["player"] for n in ("Ada", "Bob"))
    row = classes.start_round(inst.store, cls["id"], "assessment", 60)
    answered = 0
    for student, right in ((ada, True), (bob, False)):
        for _ in range(4):
            puzzle = assignment.next_puzzle(inst, st.player(inst.store, student["id"]), rng=random.Random(answered))
            truth = puzzles[ids.index(puzzle["id"])]["truth"]
            answer = "yes" if (truth == (puzzle["kind"] == "merge")) == right else "no"
            votes.cast_vote(inst, student["id"], puzzle["id"], answer, 1000 + answered, puzzle["ticket"])
            answered += 1
    report = class_reports.report(inst.store, cls["id"], row["id"])
    by_name = {s["nickname"]: s for s in report["students"]}
    assert report["answers"] == 8 and by_name["Ada"]["answers"] == by_name["Bob"]["answers"] == 4
    assert by_name["Ada"]["joined"] + by_name["Ada"]["split"] == 0
    # a mistake is known (and reported) only where the answer is shown: teach puzzles and retired ones
    shown = sum(v["teach"] for v in st.player_votes(inst.store, bob["id"]))
    assert shown > 0 and by_name["Bob"]["joined"] + by_name["Bob"]["split"] == shown
    assert by_name["Ada"]["gold_accuracy"] == 1.0 and by_name["Bob"]["gold_accuracy"] == 0.0
    assert by_name["Ada"]["median_ms"] == 1001.5
    assert sum(p["yes"] + p["no"] + p["unsure"] for p in report["puzzles"]) == 8
    lines = class_reports.answers_csv(inst.store, cls["id"], row["id"]).splitlines()
    assert lines[0].split(",") == list(class_reports.ANSWER_COLUMNS) and len(lines) == 9


def test_the_command_line_makes_teachers_and_reports_rounds(capsys, tmp_path, monkeypatch):
    from game.cli import main
    home = tmp_path / "home"
    monkeypatch.setenv("PQ_TEST_PASSWORD", "teacher password")
    assert main(["--home", str(home), "user", "add", "tess", "--role", "teacher", "--password-env",
                 "PQ_TEST_PASSWORD"]) == 0
    assert main(["--home", str(home), "user", "add", "pat", "--password-env", "PQ_TEST_PASSWORD"]) == 0
    assert main(["--home", str(home), "user", "role", "pat", "--role", "teacher"]) == 0
    capsys.readouterr()
    assert main(["--home", str(home), "user", "list", "--role", "teacher"]) == 0
    import json
    assert [json.loads(line)["username"] for line in capsys.readouterr().out.splitlines()] == ["pat", "tess"]
    store = st.Store(home / "proofquest.sqlite")
    teacher = st.player(store, players.authenticate(store, "tess", "teacher password")["id"])
    cls = classes.create_class(store, teacher, "Year 9", code_hours=1)
    classes.join(store, st.current_join_code(store, cls["id"])["code"], "Ada", "device")
    row = classes.start_round(store, cls["id"], "mixed", 60)
    store.close()
    out = tmp_path / "students.csv"
    assert main(["--home", str(home), "round-report", str(cls["id"]), str(row["id"]), "--out", str(out)]) == 0
    assert out.read_text().splitlines()[1].startswith("Ada,0,1,0,0")
    assert main(["--home", str(home), "round-report", str(cls["id"]), "99"]) == 2
    assert "this class has no round 99" in capsys.readouterr().err


def test_a_practice_round_serves_the_puzzles_that_show_their_outcome_first(inst):
    ids, _ = oracle_puzzles(inst, gold_every=1)  # every puzzle has a known answer
    teach = set(ids[::2])
    with inst.store.write() as db:
        db.conn.executemany("UPDATE puzzles SET teach = 1 WHERE id = ?", [(i,) for i in teach])
    cls, code = _class(inst.store)
    student = classes.join(inst.store, code, "Ada", "dAda")["player"]
    classes.start_round(inst.store, cls["id"], "practice", 600)
    served = []
    for n in range(len(ids)):
        puzzle = assignment.next_puzzle(inst, st.player(inst.store, student["id"]), rng=random.Random(n))
        served.append(puzzle["id"])
        votes.cast_vote(inst, student["id"], puzzle["id"], "unsure", 900, puzzle["ticket"])
    assert set(served[:len(teach)]) == teach and set(served) == set(ids)


def test_the_round_report_does_not_tell_the_teacher_which_puzzles_are_secret_gold(inst):
    ids, puzzles = oracle_puzzles(inst, teach=True, more_gold=8)
    cls, code = _class(inst.store)
    ada = classes.join(inst.store, code, "Ada", "dAda")["player"]
    row = classes.start_round(inst.store, cls["id"], "assessment", 60)  # mostly known answers
    for i in range(12):
        puzzle = assignment.next_puzzle(inst, st.player(inst.store, ada["id"]), rng=random.Random(i))
        votes.cast_vote(inst, ada["id"], puzzle["id"], "yes", 1000 + i, puzzle["ticket"])
    answered = {v["puzzle_id"]: v for v in st.player_votes(inst.store, ada["id"])}
    secret = {i for i, v in answered.items() if v["gold"] and not v["teach"]}
    assert secret and any(v["teach"] for v in answered.values())
    report = class_reports.report(inst.store, cls["id"], row["id"])
    # before: every gold puzzle tagged 'known answer', the secret ones with 'not known yet' beside it
    assert {p["puzzle"] for p in report["puzzles"] if p["known"]} == {i for i, v in answered.items() if v["teach"]}
    assert all(p["right_answer"] is None for p in report["puzzles"] if p["puzzle"] in secret)
    rows = list(csv.DictReader(class_reports.answers_csv(inst.store, cls["id"], row["id"]).splitlines()))
    assert len(rows) == 12 and "gold" not in rows[0]
    assert all(r["known"] == "0" and r["right_answer"] == "" for r in rows if int(r["puzzle"]) in secret)
