"""The command line, end to end: demo, import of the real data, agglomerate, evaluate, export, errors."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import skimage.metrics as skm
import tifffile
import zarr
from conftest import shared_data

from game.app import store as st
from game.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def evaluate(capsys, home, name):
    code, out, err = run(capsys, "--home", home, "evaluate", name, "--json")
    assert code == 0, err
    return json.loads(out)


def test_demo_has_both_error_kinds(capsys, tmp_path):
    code, out, err = run(capsys, "--home", tmp_path, "demo", "--shape", "16,96,96", "--seed", "3")
    assert code == 0, err
    info = json.loads(out)
    assert info["shape"] == [16, 96, 96] and info["supervoxels"] > info["segments"] > 5
    quality = evaluate(capsys, tmp_path, "demo")
    metrics = {"adapted_rand_error", "rand_index", "vi_split", "vi_merge", "edge_accuracy", "segments"}
    metrics.add("per_section")  # None: 3D truth
    assert set(quality) == metrics | {"initial", "limit", "gap_closed"} and set(quality["limit"]) == metrics
    assert quality["per_section"] is None
    assert quality["vi_split"] > 0.1 and quality["vi_merge"] > 0.1
    # the supervoxel limit: no merge or split of supervoxels does better
    assert quality["limit"]["adapted_rand_error"] <= quality["adapted_rand_error"]
    assert quality["limit"]["vi_split"] + quality["limit"]["vi_merge"] < quality["vi_split"] + quality["vi_merge"]
    code, _, err = run(capsys, "--home", tmp_path, "demo", "--shape", "16,96,96")
    assert code == 2 and "--force" in err


def test_fibsem_watershed_scores_as_skimage_says_and_agglomeration_improves_it(capsys, tmp_path):
    d = shared_data("fibsem-gala")
    code, _, err = run(capsys, "--home", tmp_path, "import", "fib", "--image", f"{d}/train-image.h5:stack",
                       "--supervoxels", f"{d}/train-ws.lzf.h5:stack", "--boundary", f"{d}/train-p1.lzf.h5:stack",
                       "--groundtruth", f"{d}/train-gt.lzf.h5:stack", "--resolution", "10,10,10")
    assert code == 0, err
    quality = evaluate(capsys, tmp_path, "fib")
    with h5py.File(d / "train-gt.lzf.h5") as g, h5py.File(d / "train-ws.lzf.h5") as w:
        gt, ws = g["stack"][:], w["stack"][:]
    are = skm.adapted_rand_error(gt, ws)[0]
    split, merge = skm.variation_of_information(gt, ws, ignore_labels=(0,))
    assert quality["adapted_rand_error"] == pytest.approx(are, abs=1e-9)
    assert (quality["vi_split"], quality["vi_merge"]) == pytest.approx((split, merge), abs=1e-9)
    code, _, err = run(capsys, "--home", tmp_path, "agglomerate", "fib", "--threshold", "0.5")
    assert code == 0, err
    assert evaluate(capsys, tmp_path, "fib")["adapted_rand_error"] < 0.5 * are


def test_snemi_fragments_become_a_segmentation_by_agglomeration(capsys, tmp_path):
    d = shared_data("snemi-mini")
    code, _, err = run(capsys, "--home", tmp_path, "import", "snemi", "--image", d / "train-probabilities.tif",
                       "--boundary", d / "train-probabilities.tif", "--invert-boundary",
                       "--supervoxels", d / "train-fragments.tif", "--groundtruth", d / "train-labels.tif",
                       "--resolution", "30,6,6")
    assert code == 0, err
    before = evaluate(capsys, tmp_path, "snemi")
    assert before["segments"] == 1389
    run(capsys, "--home", tmp_path, "agglomerate", "snemi", "--threshold", "0.3")
    after = evaluate(capsys, tmp_path, "snemi")
    assert after["segments"] < before["segments"] and after["vi_split"] < before["vi_split"]


def test_image_and_boundary_alone_get_supervoxels_from_agglomerate(capsys, tmp_path):
    d = shared_data("fibsem-gala")
    run(capsys, "--home", tmp_path, "import", "fib", "--image", f"{d}/train-image.h5:stack",
        "--boundary", f"{d}/train-p1.lzf.h5:stack", "--groundtruth", f"{d}/train-gt.lzf.h5:stack")
    code, out, err = run(capsys, "--home", tmp_path, "agglomerate", "fib")
    assert code == 0, err
    assert json.loads(out)["supervoxels"] > 100
    assert evaluate(capsys, tmp_path, "fib")["adapted_rand_error"] < 0.3


def test_a_volume_too_big_for_one_watershed_is_flooded_slab_by_slab(capsys, tmp_path, monkeypatch):
    from game.app import pipeline
    from game.app.instance import Instance
    from game.app.settings import load_settings

    def demo(home):
        code, out, err = run(capsys, "--home", home, "demo", "--shape", "16,96,96", "--seed", "3")
        assert code == 0, err
        return Instance(home, load_settings({"HOME": str(home)}, environ={})).volumes.open("demo")

    whole = demo(tmp_path / "whole")
    monkeypatch.setattr(pipeline, "WATERSHED_BLOCK_VOXELS", 4 * 96 * 96)  # four slabs of 4 sections
    slabbed = demo(tmp_path / "slabbed")
    labels = slabbed.read("supervoxels")
    per_slab = [set(np.unique(labels[z:z + 4])) - {0} for z in range(0, 16, 4)]
    assert all(a.isdisjoint(b) for i, a in enumerate(per_slab) for b in per_slab[i + 1:])  # none crosses a face
    assert set().union(*per_slab) == set(range(1, slabbed.attrs["n_supervoxels"] + 1))  # dense ids
    assert slabbed.attrs["n_supervoxels"] > whole.attrs["n_supervoxels"]  # cells cut at the faces ...
    a, b = evaluate(capsys, tmp_path / "whole", "demo"), evaluate(capsys, tmp_path / "slabbed", "demo")
    assert abs(a["adapted_rand_error"] - b["adapted_rand_error"]) < 0.05  # ... joined again by agglomeration


def test_a_segmentation_import_gets_supervoxels_inside_its_segments(capsys, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, size=(8, 40, 40), dtype=np.uint8)
    segmentation = np.zeros((8, 40, 40), np.uint32)
    segmentation[:, :20], segmentation[:, 20:] = 7, 9
    np.save(tmp_path / "image.npy", image)
    tifffile.imwrite(tmp_path / "seg.tif", segmentation)
    code, _, err = run(capsys, "--home", tmp_path / "h", "import", "v", "--image", tmp_path / "image.npy",
                       "--segmentation", tmp_path / "seg.tif", "--groundtruth", tmp_path / "seg.tif")
    assert code == 0, err
    quality = evaluate(capsys, tmp_path / "h", "v")
    assert quality["adapted_rand_error"] == pytest.approx(0.0) and quality["segments"] == 2


@pytest.mark.parametrize("fmt", ["h5", "tif", "npy", "zarr"])
def test_export_writes_the_current_segmentation_with_metadata(capsys, home, fmt, tmp_path):
    out = tmp_path / f"labels.{fmt}"
    code, _, err = run(capsys, "--home", home, "export", "demo", "--what", "labels", "--format", fmt, "--out", out,
                       "--scheduler", "synchronous")
    assert code == 0, err
    from game.app.instance import Instance
    inst = Instance(home)
    volume = inst.volumes.open("demo")
    expected = inst.agglomeration("demo").materialize(volume.read("supervoxels"))
    if fmt == "h5":
        with h5py.File(out) as f:
            data, attrs = f["stack"][:], dict(f["stack"].attrs)
    elif fmt == "tif":
        data = tifffile.imread(out)
        with tifffile.TiffFile(out) as t:
            attrs = json.loads(t.pages[0].description)
    elif fmt == "npy":
        data, attrs = np.load(out), json.loads(Path(str(out) + ".json").read_text())
    else:
        array = zarr.open_array(out, mode="r")
        data, attrs = array[:], dict(array.attrs)
    np.testing.assert_array_equal(data, expected)
    assert attrs["volume"] == "demo" and attrs["edits"] == 0
    assert attrs["checksum"] == "sha256:" + hashlib.sha256(np.ascontiguousarray(expected, "<u4")).hexdigest()


def test_export_at_an_edit_and_the_tables(capsys, home, tmp_path):
    from game.app import store as st
    from game.app.instance import Instance
    inst = Instance(home)
    agg = inst.agglomeration("demo")
    a, b = (int(s) for s in agg.segments()[:2])
    st.append_edit(inst.store, "demo", agg.merge(a, b).to_dict(), author="test")
    code, _, err = run(capsys, "--home", home, "export", "demo", "--at", "0", "--out", tmp_path / "before.npy")
    assert code == 0, err
    np.testing.assert_array_equal(np.load(tmp_path / "before.npy"), np.take(
        inst.volumes.open("demo").load_side("mapping"), inst.volumes.open("demo").read("supervoxels")))
    code, _, err = run(capsys, "--home", home, "export", "demo", "--what", "edits", "--out", tmp_path / "edits.csv")
    assert code == 0, err
    rows = (tmp_path / "edits.csv").read_text().splitlines()
    assert rows[0].startswith("seq,kind,source,target") and len(rows) == 2
    code, _, err = run(capsys, "--home", home, "export", "demo", "--at", "2", "--out", tmp_path / "x.npy")
    assert code == 2 and "has 1 edit;" in err and not (tmp_path / "x.npy").exists()


@pytest.mark.parametrize("argv, message", [
    (["import", "x", "--image", "missing.h5"], "not found"),
    (["import", "x", "--image", "{fib}:nope"], "no dataset 'nope'"),
    (["import", "x", "--image", "{fib}:stack", "--groundtruth", "{snemi}"], "has shape"),
    (["import", "x", "--image", "{fib}:stack", "--groundtruth", "{p1}:stack", "--groundtruth-kind", "3d"],
     "needs integer labels"),
    (["import", "x", "--image", "{fib}:stack", "--resolution", "4,-4,4"], "resolution y"),
    (["evaluate", "nothing-here"], "no volume 'nothing-here'"),
    (["agglomerate", "x", "--threshold", "3"], "threshold"),
])
def test_bad_input_exits_non_zero_with_a_clear_message_and_writes_nothing(capsys, tmp_path, argv, message):
    d = shared_data()
    paths = {"fib": d / "fibsem-gala/train-image.h5", "p1": d / "fibsem-gala/train-p1.lzf.h5",
             "snemi": d / "snemi-mini/train-labels.tif"}
    code, _, err = run(capsys, "--home", tmp_path, *[a.format(**paths) for a in argv])
    assert code == 2 and message in err and err.startswith("error: ")
    volumes = tmp_path / "volumes"
    assert not volumes.exists() or not any(volumes.iterdir())


def test_home_comes_from_the_environment_and_run_py_works(tmp_path):
    env = {"PROOFQUEST_HOME": str(tmp_path / "elsewhere"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), "demo", "--shape", "8,64,64"], env=env,
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "elsewhere" / "volumes" / "demo").is_dir()


def test_puzzles_report_prints_the_figures_of_a_volumes_puzzles(capsys, prepared_inst):
    inst, home = prepared_inst, prepared_inst.home
    n = st.puzzle_count(inst.store, "demo")
    code, out, err = run(capsys, "--home", home, "puzzles-report", "demo", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["framing"]["puzzles"] == n and report["framing"]["decision_inside_share"] == 1.0
    assert set(report["blind"]["gold"]) == {"puzzles", "always_yes", "always_no", "badge"}
    assert report["goals"]["decision_inside_all"] and report["goals"]["known_answers_judgeable"]
    code, out, err = run(capsys, "--home", home, "puzzles-report", "demo")
    assert code == 0 and f"decision point >= 24 px inside the image: {n} (100%)" in out
    code, _, err = run(capsys, "--home", home, "puzzles-report", "nothing-here")
    assert code == 2 and err.startswith("error: there is no volume 'nothing-here'")


def test_a_home_that_is_a_file_is_refused_in_one_line(capsys, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not an instance")
    code, out, err = run(capsys, "--home", a_file, "volumes")
    assert code == 2 and err.count("\n") == 1 and "is a file" in err and out == ""


def test_a_mistyped_home_says_it_makes_a_new_instance_folder(capsys, tmp_path):
    code, _, err = run(capsys, "--home", tmp_path / "instnace", "volumes")
    assert code == 0 and "did not exist; created a new instance folder" in err
    code, _, err = run(capsys, "--home", tmp_path / "instnace", "volumes")
    assert code == 0 and err == ""


@pytest.mark.parametrize("argv", [["--host", "0.0.0.0", "--port", "5077", "serve"],
                                  ["serve", "--host", "0.0.0.0", "--port", "5077"],
                                  ["--host", "0.0.0.0", "--port", "5077"]])
def test_the_address_to_serve_on_is_kept_before_or_after_the_command(argv):
    args = build_parser().parse_args(argv)
    assert (args.host, args.port) == ("0.0.0.0", 5077)
