"""Gold without ground truth: decisions settled beyond doubt on a volume without truth become puzzles with a
known answer, balanced per kind, drawn as they were shown, never measuring the players who decided them."""

import numpy as np
import pytest
from conftest import establish, vote
from PIL import Image

from game.app import images, pipeline, players
from game.app import store as st
from game.crowd import settled, votes
from game.crowd.assignment import next_puzzle
from game.puzzles.edit import PuzzleEdit
from game.puzzles.framing import part_masks
from game.puzzles.truth import reads_as


@pytest.fixture
def lab(inst, tmp_path):
    """A volume like the demo but without ground truth (a lab's), with its crowd puzzles made."""
    demo = inst.volumes.open("demo")
    for layer in ("image", "boundary", "supervoxels"):
        np.save(tmp_path / f"{layer}.npy", demo.read(layer))
    pipeline.import_volume(inst, "lab", image=str(tmp_path / "image.npy"), boundary=str(tmp_path / "boundary.npy"),
                           resolution=demo.resolution)
    pipeline.agglomerate_volume(inst, "lab")
    inst.settings.update(PRACTICE_PER_KIND=0, GOLD_SHARE=0.0, GOLD_SHARE_NEW=0.0)
    inst.pool.prepare_volume("lab")
    admin = players.register(inst.store, "expert", "a long enough password", role="admin")
    return inst, admin


def decide(inst, admin, kind: str, apply: bool) -> dict:
    """An expert settles the first open, judgeable crowd puzzle of ``kind`` on the lab volume that reads as the
    decision by the tutorial's rule (one that does not is never copied: the last test)."""
    puzzle = next(p for p in st.puzzles(inst.store, volume="lab", state="open", gold=False)
                  if p["kind"] == kind and p["judgeable"] and reads_as(p, apply)
                  and not PuzzleEdit.of(p).is_moot(inst.agglomeration("lab")))
    votes.expert_decide(inst, admin["id"], puzzle["id"], "apply" if apply else "reject")
    return st.puzzle(inst.store, puzzle["id"])


def copies(inst):
    return [p for p in st.puzzles(inst.store, volume="lab", tutorial=None) if p["settled_from"] is not None]


def test_settled_decisions_become_gold_in_pairs_of_both_answers(lab):
    inst, admin = lab
    assert any("lab has no ground truth" in note for note in settled.gold_notes(inst))
    merged = decide(inst, admin, "merge", True)
    assert copies(inst) == []  # a "yes" waits for a "no" of its kind: answering blind must score chance
    kept = decide(inst, admin, "merge", False)
    made = {p["settled_from"]: p for p in copies(inst)}
    assert set(made) == {merged["id"], kept["id"]}
    for original in (merged, kept):
        copy = made[original["id"]]
        assert copy["gold"] and not copy["teach"] and copy["truth"] == original["decision"]
        assert copy["key"] == f"settled:{original['id']}" and copy["detector"]["frame"] == original["detector"]["frame"]
        assert (copy["kind"], copy["anchors"]) == (original["kind"], original["anchors"])
    assert not any("lab has no" in note for note in settled.gold_notes(inst))
    assert settled.promote(inst, "lab") == 0  # each decision is copied once
    # the copy of the applied merge is drawn from the segmentation it was decided on: two parts, not one
    copy = made[merged["id"]]
    assert PuzzleEdit.of(copy).is_moot(inst.agglomeration("lab"))
    assert not PuzzleEdit.of(copy).is_moot(images.shown_agglomeration(inst, copy))
    overlay = np.asarray(Image.open(images.puzzle_image(inst, copy["id"], 0, "overlay")[0]))
    assert overlay.shape[-1] == 3


def test_a_copy_never_measures_a_player_who_helped_decide_it_and_counts_for_the_others(lab):
    inst, admin = lab
    voter, other = players.create_guest(inst.store), players.create_guest(inst.store)
    establish(inst, [voter])
    first = next(p for p in st.puzzles(inst.store, volume="lab", state="open", gold=False)
                 if p["kind"] == "merge" and p["judgeable"] and reads_as(p, True))
    vote(inst, voter["id"], first["id"], "yes")
    votes.expert_decide(inst, admin["id"], first["id"], "apply")
    decide(inst, admin, "merge", False)
    made = {p["settled_from"]: p for p in copies(inst)}
    assert len(made) == 2
    inst.settings.update(GOLD_SHARE=1.0, GOLD_SHARE_NEW=1.0)
    handed = {next_puzzle(inst, st.player(inst.store, voter["id"]))["id"] for _ in range(10)}
    assert made[first["id"]]["id"] not in handed
    copy = made[first["id"]]
    vote(inst, other["id"], copy["id"], "yes")
    record = [r for r in st.records(inst.store, other["id"]) if r["gold"]]
    assert len(record) == 1 and record[0]["truth"] == 1  # a secret gold answer: it measures the player


def test_teach_copies_show_the_decision_as_their_truth(lab):
    inst, admin = lab
    inst.settings.update(GOLD_PER_KIND=0)
    kept = decide(inst, admin, "merge", False)
    decide(inst, admin, "merge", True)
    copy = next(p for p in copies(inst) if p["settled_from"] == kept["id"])
    assert copy["teach"] and copy["gold"]
    player = players.create_guest(inst.store)
    reply = vote(inst, player["id"], copy["id"], "yes")["reply"]
    assert reply["feedback"] == {"correct": False, "answer": "no", "accuracy": reply["feedback"]["accuracy"]}
    picture = np.asarray(Image.open(images.puzzle_image(inst, copy["id"], 0, "truth", player_id=player["id"])[0]))
    assert picture.shape[-1] == 3
    parts = part_masks(inst.volumes.open("lab").read("supervoxels", images.puzzle_frame(inst, copy).box),
                              PuzzleEdit.of(copy), images.shown_agglomeration(inst, copy))
    _, objects = images._decision_truth(parts, copy)
    assert objects == (1, 2)  # rejected: two neurites, drawn in two colours


def test_volumes_whose_truth_decides_their_puzzles_get_no_copies(prepared_inst):
    inst = prepared_inst
    admin = players.register(inst.store, "expert", "a long enough password", role="admin")
    for kind, apply in (("merge", True), ("merge", False)):
        puzzle = next(p for p in st.puzzles(inst.store, volume="demo", state="open", gold=False)
                      if p["kind"] == kind and p["judgeable"])
        votes.expert_decide(inst, admin["id"], puzzle["id"], "apply" if apply else "reject")
    assert not [p for p in st.puzzles(inst.store, volume="demo", tutorial=None) if p["settled_from"]]
    assert settled.gold_notes(inst) == []


def test_the_landing_page_says_which_volumes_have_no_gold_and_never_sums_errors(lab):
    from game.crowd import reports
    from game.web import create_app
    inst, _ = lab
    st.set_job(inst.store, "prepare", "done", 3, 3, "ready")
    improvement = reports.quality_improvement(inst)
    assert [row["volume"] for row in improvement] == ["demo"]  # one row per volume with ground truth
    page = create_app({"TESTING": True}, instance=inst).test_client().get("/").get_data(as_text=True)
    assert "lab has no ground truth" in page and "players are measured on the gold of" not in page
    assert "less error in demo" in page


def test_a_volume_with_truth_but_no_gold_is_named_as_measuring_nobody(inst):
    """A volume too small for a balanced gold set (the play-test's 16x96x96 demo: 55 puzzles, no gold): nobody can
    be established and nothing is decided, which the admin and landing pages now say."""
    from conftest import oracle_puzzles
    ids, _ = oracle_puzzles(inst, gold_every=1000)  # crowd puzzles only
    notes = settled.gold_notes(inst)
    assert len(notes) == 1 and "demo has ground truth but no gold puzzles" in notes[0]
    assert "no player's votes count" in notes[0]
    with inst.store.write() as db:
        db.conn.execute("UPDATE puzzles SET gold = 1 WHERE id = ?", (ids[0],))
    assert settled.gold_notes(inst) == []


def test_a_settled_pair_across_sections_that_reads_against_its_decision_is_never_copied(lab):
    # the tutorial teaches that a profile carrying on the other's outline and size is one neurite: a rejected
    # merge that reads so would teach the opposite as a known answer (game.puzzles.truth.reads_as)
    from game.puzzles.looking import looks_like_one, shown_frame
    inst, admin = lab
    open_merges = [p for p in st.puzzles(inst.store, volume="lab", state="open", gold=False)
                   if p["kind"] == "merge" and p["judgeable"]]
    contrary = next(p for p in open_merges if looks_like_one(shown_frame(p)) is True)
    votes.expert_decide(inst, admin["id"], contrary["id"], "reject")
    applied = decide(inst, admin, "merge", True)
    assert copies(inst) == [], "the applied merge waits for a rejected one that reads as two"
    rejected = decide(inst, admin, "merge", False)
    assert {p["settled_from"] for p in copies(inst)} == {applied["id"], rejected["id"]}
