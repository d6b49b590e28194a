"""Making puzzles: each framed once around its decision, stored with it, and drawn from that frame."""

import numpy as np
import pytest
from conftest import oracle_puzzles
from PIL import Image

from game.app import images
from game.app import store as st
from game.crowd import assignment
from game.errors import ProofQuestError
from game.puzzles.edit import PuzzleEdit
from game.puzzles.framing import KEY, MARGIN_PX, OUT_SIZE, SLICES, Frame
from game.puzzles.looking import judgeable
from game.puzzles.render import SPOT_GAP_PX, SPOT_TICK_WIDTH_PX
from game.puzzles.truth import is_near_tie


def test_every_puzzle_is_stored_with_a_frame_that_shows_its_decision(inst):
    n = inst.pool.prepare_volume("demo")
    puzzles = st.puzzles(inst.store, volume="demo", tutorial=None)
    assert n == len(puzzles) > 0
    for p in puzzles:
        frame = Frame.from_dict(p["detector"]["frame"])
        # as drawn, the decision point lies the margin inside the image, at the volume's side too (the view is
        # centred on it, padded past the side; the stored frame keeps its window inside the volume)
        assert Frame.from_dict(p["detector"]["view"]).margin_px >= MARGIN_PX
        # the stack opens in its middle; across a gap, on the first part, the other part's section in the stack too
        assert frame.key == frame.slices // 2 if frame.across <= 1 else frame.key + frame.across < frame.slices
        if p["gold"] or p["tutorial"]:
            assert judgeable(Frame.from_dict(p["detector"]["view"])) and not is_near_tie(p["detector"]["truth_margin"])


@pytest.mark.parametrize("order", ["value", "uncertainty"])
def test_hard_to_judge_candidates_are_handed_out_at_half_their_expected_gain(inst, order):
    from conftest import establish, vote

    from game.app import players
    inst.settings.update(GOLD_SHARE=0.0, GOLD_SHARE_NEW=0.0, SPLIT_HOLD_BELIEF=0.0, PUZZLE_ORDER=order)
    inst.pool.prepare_volume("demo")
    rows = {p["id"]: p for p in st.puzzles(inst.store, volume="demo", gold=False)}
    assert {bool(p["judgeable"]) for p in rows.values()} == {True, False}
    # judged on the view players see (the stored frame as drawn), stored with each puzzle
    assert all(bool(p["judgeable"]) == judgeable(Frame.from_dict(p["detector"]["view"])) for p in rows.values())
    agg = inst.agglomeration("demo")
    suspects = assignment._suspected_mergers(inst, {"demo": agg})["demo"]
    waiting = {i for i, p in rows.items() if assignment._waits(p, suspects)}  # they come last in any case
    player = players.create_guest(inst.store)
    # past the introduction (ESTABLISHED_GOLD_ANSWERS secret gold answers, 2 here): a player still in it is handed
    # the value order from its end, as one whose votes do not count yet
    secret = [p for p in st.puzzles(inst.store, volume="demo", gold=True) if not p["teach"] and p["truth"] is not None]
    for gold in secret[:inst.settings["ESTABLISHED_GOLD_ANSWERS"]]:
        vote(inst, player["id"], gold["id"], "yes")
    establish(inst, [player])
    judged = []
    while True:
        try:
            puzzle = assignment.next_puzzle(inst, st.player(inst.store, player["id"]))
        except ProofQuestError:  # none left
            break
        if puzzle["id"] in rows and puzzle["id"] not in waiting:  # crowd puzzles (gold comes once they run out)
            judged.append(rows[puzzle["id"]])
        vote(inst, player["id"], puzzle["id"], "unsure")
    assert len(judged) == len(set(rows) - waiting)
    if order == "uncertainty":  # before: every puzzle a person can judge by looking first
        flags = [bool(p["judgeable"]) for p in judged]
        assert True in flags and flags == sorted(flags, reverse=True)
        return
    gain = [p["score"] * p["value"] * (1.0 if p["judgeable"] else 0.5) for p in judged]
    assert all(p["value"] > 0 for p in judged) and gain == sorted(gain, reverse=True)
    first_hard = next(k for k, p in enumerate(judged) if not p["judgeable"])
    assert any(p["judgeable"] for p in judged[first_hard:]), "a hard puzzle worth more comes before easy ones"


def test_pictures_are_drawn_from_the_stored_frame(prepared_inst):
    inst = prepared_inst
    puzzle = st.puzzles(inst.store, volume="demo", gold=False)[0]
    frame = Frame.from_dict(puzzle["detector"]["frame"])
    assert frame.slices == SLICES and frame.key == KEY
    volume = inst.volumes.open("demo")
    plain = np.asarray(Image.open(images.puzzle_image(inst, puzzle["id"], KEY, "plain")[0]))
    overlay = np.asarray(Image.open(images.puzzle_image(inst, puzzle["id"], KEY, "overlay")[0]))
    assert plain.shape == (OUT_SIZE, OUT_SIZE) and overlay.shape == (OUT_SIZE, OUT_SIZE, 3)
    # drawn in the stored frame's view: its sections, centred on the spot in question
    view = images.drawn_frame(volume, frame, PuzzleEdit.of(puzzle), inst.agglomeration("demo"))
    assert view.box.shape[0] == frame.slices and view.start[0] == frame.start[0] and view.point[0] == frame.point[0]
    inside = view.box.clip(volume.shape).relative_to(view.box)[1:]
    crop = volume.read("image", view.box)[KEY][inside]
    # the plain picture is the key section of the view's crop, zoomed (where the crop lies in the volume)
    small = np.asarray(Image.fromarray(plain).resize((view.side,) * 2, Image.Resampling.BOX)).astype(float)[inside]
    assert np.corrcoef(small.ravel(), crop.ravel().astype(float))[0, 1] > 0.9
    # the white ticks on the overlay point at the spot from four sides, leaving it clear, in the middle of the picture
    marked = np.argwhere((overlay == 255).all(axis=-1))
    spot = (np.array(view.point[1:]) - view.start[1:] + 0.5) * view.scale - 0.5
    off = marked - spot
    assert np.abs(spot - OUT_SIZE / 2).max() <= view.scale
    assert (np.abs(off).min(axis=1) <= SPOT_TICK_WIDTH_PX / 2).all()  # on the lines through the spot
    assert np.abs(off).max(axis=1).min() >= SPOT_GAP_PX - 1
    for axis in (0, 1):
        assert (off[:, axis] < -SPOT_GAP_PX + 1).any() and (off[:, axis] > SPOT_GAP_PX - 1).any()
    assert len({images.puzzle_image(inst, puzzle["id"], z, "plain")[0] for z in range(SLICES)}) == SLICES


def test_the_game_is_not_ready_from_the_moment_its_preparation_starts(inst, monkeypatch):
    """A restart over an instance that has puzzles: /healthz must not answer ready before the start's preparation
    has run (a client that saw it ready was refused a moment later, when the thread got to it)."""
    import threading

    from game import server
    from game.crowd import reports

    oracle_puzzles(inst)
    assert reports.readiness(inst)["ready"]
    release = threading.Event()
    monkeypatch.setattr(server, "prepare", lambda inst, **_: (release.wait(30), st.set_job(
        inst.store, "prepare", "done", 3, 3, "ready")))
    thread = server.start_preparing(inst)
    assert not reports.readiness(inst)["ready"]
    release.set()
    thread.join(30)
    assert reports.readiness(inst)["ready"]
