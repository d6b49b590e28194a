"""Split proposals on small synthetic volumes: a small intruder is cut off, also deep in the merge tree; beyond
the last merges a clean segment gets only cuts with boundary evidence (game.detection.candidates.tree_cuts through
find_candidates)."""

import numpy as np

from game.detection.candidates import find_candidates
from game.detection.detect import ArrayVolume
from game.evaluation.metrics import supervoxel_truth
from game.puzzles.edit import PuzzleEdit
from game.segmentation.agglomeration import Agglomeration
from game.segmentation.merging import mean_linkage_tree
from game.segmentation.rag import build_rag

# A neurite of twelve supervoxels in bands 8 voxels wide along x (512 voxels each), and a 64-voxel supervoxel of
# another neurite at its end (z < 2, x >= 96): 1% of the segment, under the 2% least share cuts once needed.
SHAPE = (8, 8, 100)
BANDS = 12
INTRUDER = BANDS + 1


def layers(interfaces, intruder_boundary=0.8):
    """Supervoxels, ground truth and a boundary map (uint8): ``interfaces[k]`` (BANDS - 1 of them) on the faces
    between bands k + 1 and k + 2, ``intruder_boundary`` around the intruder, 0.05 inside supervoxels."""
    x = np.arange(SHAPE[2])
    supervoxels = np.broadcast_to(1 + np.minimum(x // 8, BANDS - 1), SHAPE).astype(np.uint32).copy()
    supervoxels[:2, :, 96:] = INTRUDER
    truth = np.where(supervoxels == INTRUDER, 2, 1).astype(np.uint32)
    boundary = np.full(SHAPE, 0.05)
    for axis in range(3):
        lower = [slice(None)] * 3
        upper = [slice(None)] * 3
        lower[axis], upper[axis] = slice(0, -1), slice(1, None)
        a, b = supervoxels[tuple(lower)], supervoxels[tuple(upper)]
        face = a != b
        value = np.where((a == INTRUDER) | (b == INTRUDER), intruder_boundary,
                         np.asarray(interfaces)[np.minimum(np.minimum(a, b), BANDS - 1) - 1])
        for side in (tuple(lower), tuple(upper)):
            view = boundary[side]
            view[face] = value[face]
    return supervoxels, truth, np.rint(boundary * 255).astype(np.uint8)


def splits(supervoxels, boundary, mapping, **options):
    volume = ArrayVolume(supervoxels=supervoxels, boundary=boundary, chunks=(8, 8, 64))
    rag = build_rag(supervoxels, boundary)
    agg = Agglomeration(np.asarray(mapping))
    cuts = [c for c in find_candidates(volume, agg, rag, gaps=False, **options) if c["kind"] == "split"]
    return agg, sorted(cuts, key=lambda c: c["rank"])


def one_segment():
    return np.r_[0, np.ones(INTRUDER, np.int64)]


def test_a_small_intruder_behind_a_strong_membrane_is_cut_off_first():
    supervoxels, truth, boundary = layers(np.full(BANDS - 1, 0.1))
    agg, cuts = splits(supervoxels, boundary, one_segment())
    sv_truth = supervoxel_truth(supervoxels, truth)
    assert cuts and cuts[0]["supervoxels"] == [INTRUDER], "the strongest boundary is asked first"
    assert PuzzleEdit.of(cuts[0]).is_correct(agg, sv_truth, np.bincount(supervoxels.ravel())) is True
    assert cuts[0]["features"]["size_b"] == 64


def test_an_intruder_deep_in_the_merge_tree_is_still_offered():
    # the neurite's bands meet across membranes from 0.1 to 0.6, the intruder across 0.45: eight merges of the
    # neurite come after the intruder's, so undoing the last eight merges never reaches it
    interfaces = np.r_[np.full(3, 0.1), np.linspace(0.46, 0.6, 8)]
    supervoxels, truth, boundary = layers(interfaces, intruder_boundary=0.45)
    agg, cuts = splits(supervoxels, boundary, one_segment())
    sv_truth = supervoxel_truth(supervoxels, truth)
    sizes = np.bincount(supervoxels.ravel())
    correct = [c for c in cuts if PuzzleEdit.of(c).is_correct(agg, sv_truth, sizes)]
    assert [c["supervoxels"] for c in correct] == [[INTRUDER]]
    rag = build_rag(supervoxels, boundary)
    merges, members = mean_linkage_tree(INTRUDER, rag.u - 1, rag.v - 1, rag.linkage, rag.area)
    position = next(k for k, (_, left, right, _) in enumerate(reversed(merges))
                    if [INTRUDER - 1] in (members[left].tolist(), members[right].tolist()))
    assert position >= 8, "the intruder joined before the last eight merges"


def test_a_clean_segment_of_even_membranes_gets_no_cut():
    supervoxels, _, boundary = layers(np.full(BANDS - 1, 0.1))
    supervoxels[supervoxels == INTRUDER] = BANDS  # no intruder: one neurite
    mapping = np.r_[0, np.ones(BANDS, np.int64)]
    assert splits(supervoxels, boundary, mapping, depth=0)[1] == []  # beyond the last merges, which are always asked
    assert len(splits(supervoxels, boundary, mapping, contrast=None)[1]) == BANDS - 1


def test_a_clean_segment_of_uneven_membranes_gets_only_its_stronger_cuts():
    supervoxels, _, boundary = layers(np.resize([0.08, 0.12, 0.1], BANDS - 1))
    supervoxels[supervoxels == INTRUDER] = BANDS
    mapping = np.r_[0, np.ones(BANDS, np.int64)]
    _, cuts = splits(supervoxels, boundary, mapping, depth=0)
    _, everything = splits(supervoxels, boundary, mapping, contrast=None)
    assert 0 < len(cuts) < len(everything)
    rag = build_rag(supervoxels, boundary)
    inside = np.average(rag.linkage, weights=rag.area)  # the mean of the segment's inside contacts
    assert all(c["features"]["linkage"] > inside for c in cuts)
    assert not any(c["features"]["linkage"] > inside for c in everything if c["key"] not in {k["key"] for k in cuts})
    boundaries = [c["features"]["linkage"] for c in cuts]
    assert boundaries == sorted(boundaries, reverse=True), "strongest boundary first"


def test_a_volume_without_ground_truth_still_gets_split_candidates():
    supervoxels, _, boundary = layers(np.full(BANDS - 1, 0.1))
    _, cuts = splits(supervoxels, boundary, one_segment())  # the volume holds no ground-truth layer
    assert [INTRUDER] in [c["supervoxels"] for c in cuts] and all("truth" not in c for c in cuts)
