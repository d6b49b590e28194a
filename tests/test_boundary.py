"""The boundary U-Net, its blockwise prediction and its training loop."""

from pathlib import Path

import numpy as np
import pytest
import torch

from game.errors import ProofQuestError
from game.geometry import BBox
from game.segmentation.boundary import (
    BEST_MODEL,
    LAST_CHECKPOINT,
    TrainingSettings,
    boundary_scores,
    boundary_targets,
    predict_boundary,
    train_boundary,
)
from game.segmentation.unet import BoundaryUNet, load_model, save_model

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TINY = TrainingSettings(steps_per_epoch=4, batch_size=2, crop=(4, 24, 24), learning_rate=1e-2,
                        validation_crops=2, base_channels=4, levels=1)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors gain nothing from more threads, and on busy shared cores the
    threads' synchronisation after every operation costs more than the work."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def untrained_model(seed=0, **arch) -> BoundaryUNet:
    """A fresh network whose batch-norm statistics are not the identity, as after training."""
    torch.manual_seed(seed)
    model = BoundaryUNet(**arch)
    with torch.no_grad():
        for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)):
            norm.running_mean.uniform_(-0.2, 0.2)
            norm.running_var.uniform_(0.5, 2.0)
    return model.eval()


def two_cells(shape=(8, 32, 32), seed=0):
    """Two cells meeting at a dark, noisy membrane down the middle of x."""
    rng = np.random.default_rng(seed)
    groundtruth = np.ones(shape, np.uint32)
    groundtruth[..., shape[2] // 2:] = 2
    image = np.full(shape, 170.0)
    image[..., shape[2] // 2 - 1: shape[2] // 2 + 1] = 60
    image += rng.normal(0, 15, shape)
    return np.clip(image, 0, 255).astype(np.uint8), groundtruth


def test_boundary_targets_mark_label_zero_and_touching_labels_in_plane():
    groundtruth = np.array([[[1, 1, 2],
                             [1, 1, 2],
                             [0, 3, 3]],
                            [[1, 1, 1],
                             [1, 1, 1],
                             [1, 1, 1]]])
    expected = np.array([[[0, 1, 1],
                          [0, 1, 1],  # a voxel beside label 0 is not itself boundary
                          [1, 1, 1]],
                         [[0, 0, 0],
                          [0, 0, 0],
                          [0, 0, 0]]], np.float32)
    np.testing.assert_array_equal(boundary_targets(groundtruth), expected)


def test_boundary_targets_in_3d_also_mark_changes_between_sections():
    groundtruth = np.array([[[1, 1]], [[2, 2]]])
    assert boundary_targets(groundtruth).sum() == 0
    assert boundary_targets(groundtruth, axes=(0, 1, 2)).sum() == 4


def test_boundary_scores_match_hand_computed_average_precision():
    probability = np.array([0.9, 0.8, 0.3, 0.1]).reshape(1, 1, 4)
    targets = np.array([1, 0, 1, 0]).reshape(1, 1, 4)
    scores = boundary_scores(probability, targets)
    # thresholds 0.9, 0.8, 0.3: recall steps of 1/2 at precision 1 and 2/3
    assert scores["average_precision"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert scores["best_f1"] == pytest.approx(0.8)
    assert scores["best_threshold"] == pytest.approx(76 / 255)  # 0.3 rounds to level 76


def test_network_output_has_the_input_shape_for_odd_sizes():
    model = untrained_model()
    with torch.inference_mode():
        logits = model(torch.rand(1, 1, 3, 13, 17))
    assert logits.shape == (1, 1, 3, 13, 17)


def test_blockwise_prediction_equals_single_pass():
    model = untrained_model(base_channels=4)
    image = np.random.default_rng(1).integers(0, 256, (10, 42, 46), dtype=np.uint8)
    single = predict_boundary(image, None, model, block=image.shape, device="cpu")
    blockwise = predict_boundary(image, None, model, block=(5, 21, 23), overlap=model.context_radius, device="cpu")
    assert np.abs(single.astype(int) - blockwise).max() <= 1
    assert np.mean(single != blockwise) < 1e-3


def test_prediction_through_a_reader_writes_each_block_once():
    model = untrained_model(base_channels=4)
    image = np.random.default_rng(2).integers(0, 256, (6, 20, 24), dtype=np.uint8)
    written = np.zeros(image.shape, np.uint8)
    coverage = np.zeros(image.shape, int)

    def write(bbox: BBox, block: np.ndarray):
        written[bbox.slices] = block
        coverage[bbox.slices] += 1

    progress = []
    result = predict_boundary(lambda bbox: image[bbox.slices], image.shape, model, block=(4, 16, 16),
                              write=write, device="cpu", progress=lambda done, total: progress.append((done, total)))
    assert result is None
    assert (coverage == 1).all()
    np.testing.assert_array_equal(written, predict_boundary(image, None, model, block=(4, 16, 16), device="cpu"))
    assert progress[-1] == (8, 8)


def test_a_few_training_epochs_lower_the_loss_on_two_cells(tmp_path):
    image, groundtruth = two_cells()
    history = train_boundary(image, groundtruth, epochs=4, val_slab=6, checkpoint_dir=tmp_path,
                             settings=TINY, seed=3, progress=None, device="cpu")
    assert [record["epoch"] for record in history] == [1, 2, 3, 4]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    best = load_model(tmp_path / BEST_MODEL)
    assert best.card["epoch"] == min(history, key=lambda record: record["val_loss"])["epoch"]


def test_fine_tuning_starts_from_the_given_weights(tmp_path):
    image, groundtruth = two_cells()
    scratch = train_boundary(image, groundtruth, epochs=3, checkpoint_dir=tmp_path / "scratch", settings=TINY,
                             seed=3, progress=None, device="cpu")
    trained = load_model(tmp_path / "scratch" / BEST_MODEL)
    tuned = train_boundary(image, groundtruth, epochs=1, checkpoint_dir=tmp_path / "tuned", settings=TINY,
                           seed=4, progress=None, initial_model=trained, device="cpu")
    assert tuned[0]["train_loss"] < scratch[0]["train_loss"]
    with pytest.raises(ProofQuestError, match="architecture"):
        train_boundary(image, groundtruth, epochs=1, checkpoint_dir=tmp_path / "other", settings=TINY,
                       progress=None, initial_model=BoundaryUNet(base_channels=8), device="cpu")


def test_training_resumes_from_the_last_saved_epoch(tmp_path):
    image, groundtruth = two_cells()
    straight = train_boundary(image, groundtruth, epochs=2, val_slab=6, checkpoint_dir=tmp_path / "straight",
                              settings=TINY, seed=5, progress=None, device="cpu")
    train_boundary(image, groundtruth, epochs=1, val_slab=6, checkpoint_dir=tmp_path / "interrupted",
                   settings=TINY, seed=5, progress=None, device="cpu")
    lines = []
    resumed = train_boundary(image, groundtruth, epochs=2, val_slab=6, checkpoint_dir=tmp_path / "interrupted",
                             settings=TINY, seed=5, progress=lines.append, device="cpu")
    assert len(lines) == 1 and lines[0].startswith("epoch 2/2")
    assert [r["epoch"] for r in resumed] == [1, 2]
    for a, b in zip(straight, resumed):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-4)


def test_resuming_with_other_settings_is_refused(tmp_path):
    image, groundtruth = two_cells()
    train_boundary(image, groundtruth, epochs=1, checkpoint_dir=tmp_path, settings=TINY, progress=None, device="cpu")
    assert (tmp_path / LAST_CHECKPOINT).is_file()
    other = TrainingSettings(**{**TINY.__dict__, "learning_rate": 1e-3})
    with pytest.raises(ProofQuestError, match="resume=False"):
        train_boundary(image, groundtruth, epochs=2, checkpoint_dir=tmp_path, settings=other, progress=None,
                       device="cpu")


def test_saved_model_loads_with_identical_outputs(tmp_path):
    model = untrained_model(base_channels=4)
    save_model(model, tmp_path / "model.pt", card={"data": "noise"})
    loaded = load_model(tmp_path / "model.pt")
    x = torch.rand(1, 1, 4, 20, 24)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    assert loaded.card == {"data": "noise"}
    assert loaded.arch == model.arch


def test_loading_a_missing_or_foreign_file_says_what_is_wrong(tmp_path):
    with pytest.raises(ProofQuestError, match="no boundary model"):
        load_model(tmp_path / "absent.pt")
    (tmp_path / "notes.pt").write_text("not a model")
    with pytest.raises(ProofQuestError, match="not a boundary model"):
        load_model(tmp_path / "notes.pt")


def test_provided_membrane_map_of_fibsem_gala_ranks_boundaries_far_above_chance():
    h5py = pytest.importorskip("h5py")
    folder = DATA / "fibsem-gala"
    if not folder.is_dir():
        pytest.skip(f"real EM data not found at {folder}")
    with h5py.File(folder / "train-gt.lzf.h5") as gt, h5py.File(folder / "train-p1.lzf.h5") as p1:
        scores = boundary_scores(p1["stack"][:], boundary_targets(gt["stack"][:]))
    # a map that knows nothing scores its boundary fraction (about 7 % here)
    assert 0 < scores["boundary_fraction"] < 0.1
    assert scores["average_precision"] > 3 * scores["boundary_fraction"]
