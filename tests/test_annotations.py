"""What a lab brings: truth declared for what it is (3D, per section, a membrane mask, tissue classes), maps
scaled whatever their type, the resolution checked, and truth drawn per section evaluated per section."""

import json

import numpy as np
import pytest
import tifffile
from conftest import shared_data
from skimage.measure import label

from game.app import pipeline
from game.app.instance import Instance
from game.app.settings import load_settings
from game.cli import main
from game.errors import ProofQuestError
from game.evaluation import metrics
from game.puzzles.truth import supervoxel_truth
from game.segmentation.boundary import boundary_targets
from game.volumes.annotations import classify_annotation
from game.volumes.intensity import image_scaling, probability_scaling, uint8_converter
from game.volumes.volume import check_resolution_order


def per_section(labels):
    """Labels renumbered section by section in raster order, as a per-section annotation tool writes them."""
    return np.stack([label(section, connectivity=1) for section in labels]).astype(np.uint16)


def test_annotations_are_told_apart():
    truth = tifffile.imread(shared_data("snemi-mini", "train-labels.tif"))
    assert classify_annotation(truth).kind == "3d"
    assert classify_annotation(per_section(truth)).kind == "2d"
    offset = per_section(truth).astype(np.uint32) + 1000 * np.arange(len(truth), dtype=np.uint32)[:, None, None]
    found = classify_annotation(offset)
    assert found.kind == "2d" and "no label continues" in found.reason
    mask = boundary_targets(truth)
    assert {classify_annotation(m).kind for m in (mask, mask.astype(np.uint8), (255 * mask).astype(np.uint8),
                                                  mask > 0)} == {"membrane"}
    tissue = np.where(mask > 0, 1, 2).astype(np.uint8)
    tissue[::7, ::5, ::5] = 3  # speckles of a third class
    assert classify_annotation(tissue).kind == "tissue"


@pytest.mark.parametrize("dtype, values, expected", [
    (np.uint8, [0, 1], [0, 255]), (np.bool_, [False, True], [0, 255]), (np.float32, [0.0, 0.5, 1.0], [0, 128, 255]),
    (np.uint8, [0, 100, 255], [0, 100, 255]), (np.uint16, [0, 65535], [0, 255]), (np.float64, [0.0, 200.0], [0, 200])])
def test_a_boundary_map_is_scaled_to_a_probability_whatever_its_type(dtype, values, expected):
    data = np.array(values, dtype)
    scaling = probability_scaling(data.dtype, float(data.min()), float(data.max()))
    assert scaling(data).tolist() == expected


def test_what_is_no_probability_is_refused_and_images_are_stretched():
    for low, high in ((-1.0, 1.0), (0.0, 300.0)):
        with pytest.raises(ProofQuestError, match="rescale it"):
            probability_scaling(np.float32, low, high)
    assert image_scaling(np.uint16, 1000, 3000)(np.array([1000, 2000, 3000], np.uint16)).tolist() == [0, 128, 255]
    mask = np.zeros((3, 4, 4), np.uint8)
    mask[:, 1] = 1
    convert, scaling = uint8_converter(mask, "boundary", invert=True)
    assert "binary mask" in scaling.note and set(np.unique(convert(mask))) == {0, 255}


@pytest.mark.parametrize("resolution, message", [((4.6, 4.6, 50), "give 50,4.6,4.6"), ((0.03, 0.006, 0.006),
                                                                                         "micrometres"),
                                                 ((50e3, 5e3, 5e3), "picometres")])
def test_a_resolution_in_the_wrong_order_or_unit_is_refused_with_what_to_give(resolution, message):
    with pytest.raises(ProofQuestError, match=message):
        check_resolution_order(resolution, (20, 1024, 1024))
    assert check_resolution_order((50, 4.6, 4.6), (20, 1024, 1024)) == (50.0, 4.6, 4.6)


def run(capsys, home, *argv):
    code = main([str(a) for a in ("--home", home) + argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_truth_drawn_per_section_is_declared_evaluated_per_section_and_decides_no_puzzle(capsys, tmp_path):
    d = shared_data("snemi-mini")
    truth = tifffile.imread(d / "train-labels.tif")
    tifffile.imwrite(tmp_path / "truth2d.tif", per_section(truth))
    tifffile.imwrite(tmp_path / "membranes.tif", boundary_targets(truth).astype(np.uint8))  # 0/1, as labs save them
    code, out, err = run(capsys, tmp_path, "import", "s", "--image", d / "train-probabilities.tif", "--boundary",
                         tmp_path / "membranes.tif", "--groundtruth", tmp_path / "truth2d.tif",
                         "--resolution", "30,6,6")
    assert code == 0, err
    info = json.loads(out)
    assert info["truth"]["kind"] == "2d" and "binary mask" in info["scaling"]["boundary"]["note"]
    inst = Instance(tmp_path, load_settings({"HOME": str(tmp_path)}, environ={}))
    assert set(np.unique(inst.volumes.open("s").read("boundary"))) == {0, 255}
    assert run(capsys, tmp_path, "agglomerate", "s")[0] == 0
    code, out, err = run(capsys, tmp_path, "evaluate", "s", "--json")
    result = json.loads(out)
    assert result["per_section"] == 32
    # the mean over sections of each section's own adapted Rand error, from the voxels
    volume = inst.volumes.open("s")
    segmentation = inst.agglomeration("s").mapping[volume.read("supervoxels")]
    labels = volume.read("groundtruth")
    expected = np.mean([metrics.adapted_rand_error(labels[z], segmentation[z])[0] for z in range(32)])
    assert result["adapted_rand_error"] == pytest.approx(expected, abs=1e-9)
    assert "mean over 32 sections" in run(capsys, tmp_path, "evaluate", "s")[1]
    # labels drawn per section never say which profiles of two sections are one neurite: no puzzle truth
    assert supervoxel_truth(volume, inst.agglomeration("s").n_supervoxels) is None
    candidates = inst.pool.detect("s")
    assert candidates and all(c.get("truth") is None for c in candidates)
    inst.store.close()


def test_tissue_classes_are_refused_and_a_membrane_mask_is_kept_as_a_target(capsys, tmp_path):
    d = shared_data("snemi-mini")
    mask = boundary_targets(tifffile.imread(d / "train-labels.tif"))
    tissue = np.where(mask > 0, 1, 2).astype(np.uint8)
    tissue[::7, ::5, ::5] = 3
    tifffile.imwrite(tmp_path / "tissue.tif", tissue)
    code, _, err = run(capsys, tmp_path, "import", "t", "--image", d / "train-probabilities.tif",
                       "--groundtruth", tmp_path / "tissue.tif", "--resolution", "30,6,6")
    assert code == 2 and "tissue classes" in err and "membrane class as a 0/1 mask" in err
    tifffile.imwrite(tmp_path / "mask.tif", mask)
    code, out, err = run(capsys, tmp_path, "import", "m", "--image", d / "train-probabilities.tif",
                         "--groundtruth", tmp_path / "mask.tif", "--resolution", "30,6,6")
    assert code == 0 and json.loads(out)["truth"]["kind"] == "membrane"
    inst = Instance(tmp_path, load_settings({"HOME": str(tmp_path)}, environ={}))
    volume = inst.volumes.open("m")
    assert volume.layers == ("image", "membranes") and volume.read("membranes").max() == 255
    inst.store.close()
    code, _, err = run(capsys, tmp_path, "import", "x", "--image", d / "train-probabilities.tif",
                       "--resolution", "6,6,30")
    assert code == 2 and "give 30,6,6" in err and not (tmp_path / "volumes" / "x").exists()


def test_an_import_without_a_resolution_says_what_it_assumed_and_the_next_step(tmp_path):
    inst = Instance(tmp_path, load_settings({"HOME": str(tmp_path)}, environ={}))
    np.save(tmp_path / "image.npy", np.zeros((4, 32, 32), np.uint16))
    info = pipeline.import_volume(inst, "v", image=str(tmp_path / "image.npy"))
    assert inst.volumes.open("v").resolution == (1.0, 1.0, 1.0) and "1 nm voxels assumed" in info["notes"][0]
    with pytest.raises(ProofQuestError, match="it has only an image: run `segment v`"):
        pipeline.evaluate_volume(inst, "v")  # agglomerate could not make one: it needs a boundary map
    inst.store.close()
