"""The generated demo volume and the classical membrane filter."""

import pathlib

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.stats import rankdata
from skimage.metrics import variation_of_information

from game.errors import ProofQuestError
from game.geometry import BBox
from game.segmentation.filters import membrane_probability
from game.volumes import synthetic
from game.volumes.synthetic import DemoSpec, generate, generate_block, iter_blocks

SMALL = DemoSpec(shape=(16, 96, 96), seed=7)
FIBSEM = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "fibsem-gala"


@pytest.fixture(scope="module")
def small_volume():
    return generate(SMALL)


def roc_auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive voxel scores above a random negative one (Mann–Whitney)."""
    ranks = rankdata(score.ravel())
    positive = positive.ravel()
    n_pos, n_neg = positive.sum(), positive.size - positive.sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def test_same_seed_regenerates_the_identical_volume(small_volume):
    synthetic._skeleton.cache_clear()
    image, groundtruth = generate(DemoSpec(shape=(16, 96, 96), seed=7))
    np.testing.assert_array_equal(image, small_volume[0])
    np.testing.assert_array_equal(groundtruth, small_volume[1])


def test_different_seeds_give_different_tissue(small_volume):
    image, groundtruth = generate(DemoSpec(shape=(16, 96, 96), seed=8))
    assert np.mean(image == small_volume[0]) < 0.2
    # unrelated partitions: knowing one neurite says little about the other's
    split, merge = variation_of_information(small_volume[1], groundtruth, ignore_labels=(0,))
    assert split > 1 and merge > 1


def test_blocks_stitch_into_exactly_the_whole_volume(small_volume):
    image = np.zeros(SMALL.shape, np.uint8)
    groundtruth = np.zeros(SMALL.shape, np.uint32)
    covered = np.zeros(SMALL.shape, int)
    for bbox, block_image, block_truth in iter_blocks(SMALL, chunks=(5, 40, 33)):
        image[bbox.slices] = block_image
        groundtruth[bbox.slices] = block_truth
        covered[bbox.slices] += 1
    assert (covered == 1).all()
    np.testing.assert_array_equal(image, small_volume[0])
    np.testing.assert_array_equal(groundtruth, small_volume[1])


def test_any_block_equals_that_region_of_the_whole(small_volume):
    bbox = BBox((3, 17, 50), (11, 60, 96))
    image, groundtruth = generate_block(SMALL, bbox)
    np.testing.assert_array_equal(image, small_volume[0][bbox.slices])
    np.testing.assert_array_equal(groundtruth, small_volume[1][bbox.slices])


def test_volume_has_the_documented_types_and_a_full_grey_range(small_volume):
    image, groundtruth = small_volume
    assert image.dtype == np.uint8 and groundtruth.dtype == np.uint32
    assert image.shape == groundtruth.shape == SMALL.shape
    assert image.std() > 25
    assert np.percentile(image, 1) < 90 and np.percentile(image, 99) > 190
    membrane = np.mean(groundtruth == 0)
    assert 0.03 < membrane < 0.25


def test_neurites_are_connected_and_mostly_span_many_slices(small_volume):
    groundtruth = small_volume[1]
    ids, sizes = np.unique(groundtruth[groundtruth > 0], return_counts=True)
    big = ids[sizes >= 300]
    assert len(big) >= 10
    connected, spans = [], []
    for neurite in big:
        mask = groundtruth == neurite
        components, count = ndi.label(mask, structure=np.ones((3, 3, 3)))
        connected.append(np.bincount(components.ravel())[1:].max() / mask.sum())
        spans.append(np.ptp(np.flatnonzero(mask.any(axis=(1, 2)))) + 1)
    assert np.mean(connected) > 0.97
    assert np.median(spans) >= 0.75 * SMALL.shape[0]


def test_membranes_are_darker_than_cytoplasm(small_volume):
    image, groundtruth = small_volume
    assert image[groundtruth == 0].mean() < image[groundtruth > 0].mean() - 50


def test_membrane_probability_is_high_on_the_demo_membranes(small_volume):
    image, groundtruth = small_volume
    probability = membrane_probability(image)
    assert probability.dtype == np.float32 and probability.shape == image.shape
    assert probability.min() >= 0 and probability.max() <= 1
    assert probability[groundtruth == 0].mean() > probability[groundtruth > 0].mean() + 0.3
    assert roc_auc(probability, groundtruth == 0) > 0.9


@pytest.mark.skipif(not FIBSEM.is_dir(), reason="real EM data (../shared/data/fibsem-gala) absent")
def test_membrane_probability_finds_membranes_in_real_fibsem():
    h5py = pytest.importorskip("h5py")
    with h5py.File(FIBSEM / "train-image.h5") as f:
        image = f["stack"][:12]
    with h5py.File(FIBSEM / "train-gt.lzf.h5") as f:
        groundtruth = f["stack"][:12]
    probability = membrane_probability(image)
    # the gala project's trained boundary map reaches 0.93 on this volume
    assert roc_auc(probability, groundtruth == 0) > 0.88


def test_membrane_probability_takes_a_single_slice(small_volume):
    image = small_volume[0]
    single = membrane_probability(image[4], intensity_range=(0, 255))
    stack = membrane_probability(image, intensity_range=(0, 255))
    assert single.shape == image.shape[1:]
    np.testing.assert_allclose(single, stack[4], atol=1e-6)


def test_membrane_probability_rejects_a_line_of_pixels():
    with pytest.raises(ProofQuestError, match="2D slice or 3D"):
        membrane_probability(np.zeros(10))


@pytest.mark.parametrize("bad", [{"shape": (0, 64, 64)}, {"resolution": (30, -6, 6)}, {"membrane_gaps": 1.5},
                                 {"radius_nm": 5.0}])
def test_spec_rejects_impossible_settings(bad):
    with pytest.raises(ProofQuestError):
        DemoSpec(**bad)


def test_block_outside_the_volume_is_refused():
    with pytest.raises(ProofQuestError, match="inside"):
        generate_block(SMALL, BBox((0, 0, 80), (4, 16, 100)))


def test_whole_volume_generation_refuses_sizes_meant_for_blocks():
    with pytest.raises(ProofQuestError, match="iter_blocks"):
        generate(DemoSpec(shape=(512, 1024, 1024)))
