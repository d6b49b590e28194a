"""train-boundary as a lab uses it: a hold-out of sections, a share or none, another volume to validate on,
a crop, and neuron labels or a membrane mask as the target."""

import json

import numpy as np
import pytest
import tifffile
from conftest import shared_data

from game.app.training import holdout_sections, parse_crop
from game.cli import main
from game.errors import ProofQuestError
from game.segmentation.boundary import boundary_targets
from game.segmentation.unet import load_model


def run(capsys, home, *argv):
    code = main([str(a) for a in ("--home", home) + argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_hold_out_is_a_count_a_share_or_none_and_leaves_sections_to_train_on():
    assert holdout_sections("4", 20) == 4 and holdout_sections("0.3", 20) == 6 and holdout_sections("none", 20) == 0
    for bad, message in (("19", "leaves 1 of the 20"), ("1.5", "share lies between"), ("half", "number of sections")):
        with pytest.raises(ProofQuestError, match=message):
            holdout_sections(bad, 20)
    assert parse_crop("0:20,:,10:", (32, 160, 160)).shape == (20, 160, 150)
    with pytest.raises(ProofQuestError, match="holds no voxel"):
        parse_crop("40:50,:,:", (32, 160, 160))


def test_a_twenty_section_stack_trains_with_each_kind_of_hold_out_and_target(capsys, tmp_path):
    d = shared_data("snemi-mini")
    truth = tifffile.imread(d / "train-labels.tif")
    tifffile.imwrite(tmp_path / "mask.tif", boundary_targets(truth).astype(np.uint8))
    image = d / "train-probabilities.tif"  # no raw image ships with snemi-mini: its map looks like EM enough
    for name, groundtruth in (("labels", d / "train-labels.tif"), ("mask", tmp_path / "mask.tif"),
                              ("other-mask", tmp_path / "mask.tif")):
        code, _, err = run(capsys, tmp_path, "import", name, "--image", image, "--groundtruth", groundtruth,
                           "--resolution", "30,6,6")
        assert code == 0, err
    quick = ("--epochs", "1", "--steps-per-epoch", "1")

    def train(volume, *options):
        code, out, err = run(capsys, tmp_path, "train-boundary", volume, *quick, "--out", tmp_path / "net.pt",
                             *options)
        assert code == 0, err
        return json.loads(out[out.index("{"):]), load_model(tmp_path / "net.pt").card["trained_on"]

    # the case: 20 sections, the default 30% held out (14 left to train on, fewer than a crop is deep)
    info, card = train("labels", "--crop", "0:20,:,:")
    assert info["held_out_sections"] == 6 and card["val_slab_z"] == 14 and info["best_val_loss"] is not None
    info, card = train("labels", "--crop", "4:24,0:96,0:96", "--holdout", "3")
    assert card["crop"] == [[4, 0, 0], [24, 96, 96]] and card["val_slab_z"] == 21
    info, _ = train("labels", "--holdout", "none")
    assert info["held_out_sections"] == 0 and info["best_val_loss"] is None
    info, card = train("mask", "--validation", "other-mask")
    assert info["targets"] == "membranes" and card["truth"] == "membrane" and info["best_val_loss"] is not None
    code, _, err = run(capsys, tmp_path, "train-boundary", "mask", *quick, "--validation", "labels")
    assert code == 2 and "validate on the same kind of annotation" in err
    code, _, err = run(capsys, tmp_path, "train-boundary", "labels", *quick, "--holdout", "31")
    assert code == 2 and "leaves 1 of the 32 sections" in err
    code, _, err = run(capsys, tmp_path, "import", "bare", "--image", image, "--resolution", "30,6,6")
    code, _, err = run(capsys, tmp_path, "train-boundary", "bare", *quick)
    assert code == 2 and "no ground truth to train on" in err and "membrane mask" in err
