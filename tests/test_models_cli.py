"""The model commands end to end: segment, train-boundary (with resume), detect, retrain-detector."""

import json

import pytest
from conftest import shared_data

from game.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_segment_replaces_the_segmentation_with_the_networks(capsys, home):
    code, out, err = run(capsys, "--home", home, "segment", "demo")
    assert code == 0, err
    assert json.loads(out)["supervoxels"] > 0
    code, out, _ = run(capsys, "--home", home, "evaluate", "demo", "--json")
    assert json.loads(out)["adapted_rand_error"] < 0.2


def test_segment_refuses_to_drop_edits_unless_told(capsys, inst, home):
    from game.app import store as st
    agg = inst.agglomeration("demo")
    a, b = list(agg.segments())[:2]
    st.append_edit(inst.store, "demo", agg.merge(a, b).to_dict(), author="test")
    code, _, err = run(capsys, "--home", home, "segment", "demo")
    assert code == 2 and "--discard-edits" in err
    assert st.edit_count(inst.store, "demo") == 1


def test_train_boundary_writes_a_model_and_resumes_from_its_checkpoint(capsys, tmp_path):
    d = shared_data("fibsem-gala")
    home = tmp_path / "h"
    run(capsys, "--home", home, "import", "fib", "--image", f"{d}/train-image.h5:stack",
        "--groundtruth", f"{d}/train-gt.lzf.h5:stack")
    out_model = tmp_path / "net.pt"
    code, out, err = run(capsys, "--home", home, "train-boundary", "fib", "--epochs", "1", "--steps-per-epoch", "2",
                         "--out", out_model)
    assert code == 0, err
    assert json.loads(out[out.index("{"):])["epochs"] == 1 and out_model.is_file()
    code, out, err = run(capsys, "--home", home, "train-boundary", "fib", "--epochs", "2", "--steps-per-epoch", "2",
                         "--out", out_model)
    assert code == 0, err
    assert "epoch 1/2" not in out and "epoch 2/2" in out, "the second run resumes after epoch 1"
    from game.segmentation.unet import load_model
    assert load_model(out_model).card["trained_on"]["volume"] == "fib"


def test_detect_lists_candidates_with_ranking_figures(capsys, home):
    code, out, err = run(capsys, "--home", home, "detect", "demo", "--json", "--limit", "10")
    assert code == 0, err
    result = json.loads(out)
    assert 0 < len(result["candidates"]) <= 10
    first = result["candidates"][0]
    assert {"kind", "score", "location", "segments", "supervoxels", "anchors"} <= set(first)
    assert set(result["evaluation"]) == {"merge", "split"}
    scores = [c["score"] for c in result["candidates"]]
    assert all(0 <= s <= 1 for s in scores)


def test_retrain_detector_on_exported_answers(capsys, home, tmp_path):
    code, out, _ = run(capsys, "--home", home, "detect", "demo", "--json")
    candidates = json.loads(out)["candidates"]
    labels = tmp_path / "answers.jsonl"
    labels.write_text("".join(json.dumps({**c, "answer": c["truth"]}) + "\n" for c in candidates
                              if c.get("truth") is not None))
    new_model = tmp_path / "edit_score.json"
    code, out, err = run(capsys, "--home", home, "retrain-detector", "demo", "--labels", labels, "--out", new_model)
    assert code == 0, err
    report = json.loads(out[out.index("{"):])
    assert report["labels"] > 0 and new_model.exists() == report["kept_new"]
    assert set(report["kinds"]) == {"contact", "gap", "tree"}
    for kind in report["kinds"].values():
        assert kind["skipped"] == 0, "exported candidates carry the score's features"
        assert "reason" in kind or kind["train"] + kind["holdout"] == kind["answers"]
