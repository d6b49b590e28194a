"""Supervoxels, the RAG, agglomeration and the edit log (game.segmentation)."""

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.metrics import adapted_rand_error, variation_of_information

from game.errors import ProofQuestError
from game.geometry import BBox
from game.segmentation.agglomeration import Agglomeration, Edit
from game.segmentation.merging import agglomerate, segment_subgraph
from game.segmentation.rag import RAG, build_rag, build_rag_blockwise, edges_between
from game.segmentation.watershed import oversegment_segments, watershed_supervoxels

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIBSEM = DATA / "fibsem-gala"


def fibsem(name):
    h5py = pytest.importorskip("h5py")
    path = FIBSEM / name
    if not path.exists():
        pytest.skip(f"real EM data not found at {path}")
    with h5py.File(path, "r") as f:
        return f["stack"][:]


def random_supervoxels(shape, n_seeds, seed):
    """A random over-segmentation: nearest-seed (Voronoi) cells with a few 0 voxels."""
    rng = np.random.default_rng(seed)
    markers = np.zeros(shape, np.int32)
    markers[tuple(rng.integers(0, s, n_seeds) for s in shape)] = np.arange(1, n_seeds + 1)
    _, nearest = ndi.distance_transform_edt(markers == 0, return_indices=True)
    labels = markers[tuple(nearest)].astype(np.uint32)
    labels[rng.random(shape) < 0.02] = 0
    return labels


def rag_fields(rag):
    return {name: getattr(rag, name) for name in ("u", "v", "mean", "min", "max", "area")}


# --- RAG ---------------------------------------------------------------------------


def test_build_rag_counts_contact_faces_and_boundary_statistics():
    supervoxels = np.array([[[1, 1, 2], [1, 2, 2]]])
    boundary = np.array([[[0, 51, 102], [51, 153, 255]]], np.uint8)  # 0, .2, .4 / .2, .6, 1.0
    rag = build_rag(supervoxels, boundary)
    # faces 1|2: (0,1)-(1,1) y: (.2+.6)/2; row 0 x: (.2+.4)/2; row 1 x: (.2+.6)/2
    assert rag.u.tolist() == [1] and rag.v.tolist() == [2]
    assert rag.area.tolist() == [3]
    np.testing.assert_allclose(rag.mean, [(0.4 + 0.3 + 0.4) / 3], rtol=1e-6)
    np.testing.assert_allclose(rag.min, [0.3], rtol=1e-6)
    np.testing.assert_allclose(rag.max, [0.4], rtol=1e-6)
    assert rag.n_supervoxels == 2


def test_build_rag_skips_label_zero_and_non_touching_pairs():
    supervoxels = np.array([[[1, 1, 0, 3]], [[2, 2, 0, 3]], [[2, 3, 3, 3]]])
    boundary = np.full(supervoxels.shape, 0.5, np.float32)
    boundary[2] = 1.0
    rag = build_rag(supervoxels, boundary)
    assert list(zip(rag.u.tolist(), rag.v.tolist())) == [(1, 2), (2, 3)]
    assert rag.area.tolist() == [2, 2]  # 2|3: z face at x=1 and x face in the last plane
    np.testing.assert_allclose(rag.mean, [0.5, 0.875])
    np.testing.assert_allclose(rag.min, [0.5, 0.75])


def test_rag_pairs_are_sorted_unique_and_ordered():
    supervoxels = random_supervoxels((12, 16, 16), 40, seed=1)
    rag = build_rag(supervoxels, np.random.default_rng(1).random(supervoxels.shape, np.float32))
    assert (rag.u < rag.v).all() and rag.u.min() >= 1
    key = rag.u.astype(np.int64) * (rag.n_supervoxels + 1) + rag.v
    assert (np.diff(key) > 0).all()
    assert ((rag.min <= rag.mean + 1e-6) & (rag.mean <= rag.max + 1e-6)).all()


@pytest.mark.parametrize("chunks", [(3, 5, 7), (1, 24, 28), (20, 24, 28), (8, 8, 8)])
def test_blockwise_rag_equals_whole_rag(chunks):
    supervoxels = random_supervoxels((20, 24, 28), 60, seed=2)
    boundary = (np.random.default_rng(2).random(supervoxels.shape) * 255).astype(np.uint8)
    whole = build_rag(supervoxels, boundary)
    blocks = []
    blockwise = build_rag_blockwise(lambda box: supervoxels[box.slices], lambda box: boundary[box.slices],
                                    supervoxels.shape, chunks, progress=lambda done, total: blocks.append(total))
    for name, expected in rag_fields(whole).items():
        np.testing.assert_allclose(getattr(blockwise, name), expected, rtol=1e-6, err_msg=name)
    assert blockwise.n_supervoxels == whole.n_supervoxels
    assert len(blocks) == len(list(BBox.from_shape(supervoxels.shape).tiles(chunks)))


def test_rag_save_then_load_round_trips(tmp_path):
    supervoxels = random_supervoxels((6, 10, 10), 12, seed=3)
    rag = build_rag(supervoxels, np.random.default_rng(3).random(supervoxels.shape, np.float32))
    rag.save(tmp_path / "rag.npz")
    loaded = RAG.load(tmp_path / "rag.npz")
    for name, expected in rag_fields(rag).items():
        np.testing.assert_array_equal(getattr(loaded, name), expected)
    assert loaded.n_supervoxels == rag.n_supervoxels


def toy_rag(edges, n_supervoxels):
    """A RAG from (u, v, mean, area) rows."""
    u, v, mean, area = (np.array(column) for column in zip(*edges))
    return RAG(u.astype(np.uint32), v.astype(np.uint32), mean.astype(np.float32),
               mean.astype(np.float32), mean.astype(np.float32), area.astype(np.int64), n_supervoxels)


def test_edges_between_combines_edges_per_segment_pair_by_area():
    rag = toy_rag([(1, 2, 0.9, 2), (1, 3, 0.2, 1), (2, 3, 0.5, 3), (3, 4, 0.7, 5)], 4)
    between = edges_between(rag, np.array([0, 1, 1, 3, 3]))
    assert list(zip(between.u.tolist(), between.v.tolist())) == [(1, 3)]
    assert between.area.tolist() == [4]
    np.testing.assert_allclose(between.mean, [(0.2 * 1 + 0.5 * 3) / 4], rtol=1e-6)
    np.testing.assert_allclose([between.min[0], between.max[0]], [0.2, 0.5], rtol=1e-6)


def test_edges_between_accepts_64_bit_segment_ids():
    rag = toy_rag([(1, 2, 0.2, 1), (2, 3, 0.4, 1)], 3)
    between = edges_between(rag, np.array([0, 2 ** 40, 5, 2 ** 40 + 7], np.uint64))
    assert list(zip(between.u.tolist(), between.v.tolist())) == [(5, 2 ** 40), (5, 2 ** 40 + 7)]
    np.testing.assert_array_equal(agglomerate(rag, 0.3, mapping=np.array([0, 2 ** 40, 5, 2 ** 40 + 7])),
                                  [0, 5, 5, 2 ** 40 + 7])


def test_segment_subgraph_keeps_only_edges_inside_the_segment():
    rag = toy_rag([(1, 2, 0.1, 1), (1, 3, 0.2, 1), (2, 4, 0.3, 1), (3, 4, 0.4, 1), (4, 5, 0.5, 1)], 5)
    agglomeration = Agglomeration(np.array([0, 7, 7, 8, 7, 8]))
    inside = segment_subgraph(rag, agglomeration, 7)
    assert list(zip(inside.u.tolist(), inside.v.tolist())) == [(1, 2), (2, 4)]
    assert len(segment_subgraph(rag, agglomeration, 8)) == 0


# --- supervoxels -------------------------------------------------------------------


def two_cells(shape=(8, 20, 30), wall=15):
    """Two cells separated by a membrane plane at x == wall."""
    boundary = np.zeros(shape, np.float32)
    boundary[..., wall] = 1.0
    return boundary


def test_watershed_supervoxels_do_not_cross_a_clear_membrane():
    boundary = two_cells()
    supervoxels = watershed_supervoxels(boundary, sigma=0)
    left, right = np.unique(supervoxels[..., :15]), np.unique(supervoxels[..., 16:])
    assert np.intersect1d(left, right).size == 0
    assert supervoxels.dtype == np.uint32
    assert np.array_equal(np.unique(supervoxels), np.arange(1, supervoxels.max() + 1))


def test_watershed_supervoxels_leave_outside_the_mask_zero_and_cover_inside():
    boundary = two_cells()
    boundary[:, 19:, :] = 1.0
    mask = np.zeros(boundary.shape, bool)
    mask[:, 2:17, :] = True
    mask[:, 19:, :] = True  # all membrane and cut off: no seed reaches it
    supervoxels = watershed_supervoxels(boundary, mask=mask, sigma=0)
    assert (supervoxels[~mask] == 0).all() and (supervoxels[mask] > 0).all()


def test_watershed_supervoxels_read_uint8_as_probability_times_255():
    rng = np.random.default_rng(4)
    as_uint8 = (ndi.gaussian_filter(rng.random((6, 24, 24)), 2) * 255 * 3).clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(watershed_supervoxels(as_uint8),
                                  watershed_supervoxels(as_uint8.astype(np.float32) / 255))


def test_watershed_supervoxels_rarely_cross_groundtruth_on_fibsem():
    boundary, truth = fibsem("train-p1.lzf.h5"), fibsem("train-gt.lzf.h5")
    supervoxels = watershed_supervoxels(boundary)
    split, merge = variation_of_information(truth, supervoxels, ignore_labels=(0,))
    print(f"watershed_supervoxels on fibsem-gala: {supervoxels.max()} supervoxels, "
          f"VI split {split:.3f} merge {merge:.3f}")
    assert merge < 0.12  # gala's own watershed: 0.121 with 203 fragments
    assert supervoxels.max() < 1000


def segmentation_with_awkward_segments():
    """Segments with imported ids: one in two pieces, a dumbbell, a 64-bit id, and 0s."""
    segmentation = np.zeros((10, 24, 40), np.uint64)
    segmentation[:, :, :12] = 1000
    segmentation[:, :, 28:] = 1000                  # same segment, second piece
    segmentation[:, 2:10, 12:28] = 7
    segmentation[:, 12:22, 12:28] = 2 ** 33
    segmentation[:, 6:18, 18:22] = 0                # a hole through 7 and 2**33
    segmentation[3:7, 4:8, 14:26] = 5
    return segmentation


@pytest.mark.parametrize("with_boundary", [False, True])
def test_oversegment_segments_never_crosses_segments(with_boundary):
    segmentation = segmentation_with_awkward_segments()
    boundary = np.random.default_rng(5).random(segmentation.shape).astype(np.float32) if with_boundary else None
    supervoxels, mapping = oversegment_segments(segmentation, boundary, min_distance=2)
    np.testing.assert_array_equal(mapping[supervoxels], segmentation)
    assert mapping[0] == 0 and mapping.dtype == np.uint64
    assert np.array_equal(np.unique(supervoxels), np.arange(supervoxels.max() + 1))
    # every supervoxel is one connected piece
    for sv in range(1, supervoxels.max() + 1):
        assert ndi.label(supervoxels == sv)[1] == 1


def test_oversegment_segments_cuts_a_dumbbell_at_its_neck():
    segmentation = np.zeros((9, 9, 40), np.uint32)
    segmentation[:, :, :15] = 3
    segmentation[:, :, 25:] = 3
    segmentation[3:6, 3:6, 15:25] = 3
    supervoxels, mapping = oversegment_segments(segmentation)
    assert supervoxels[4, 4, 5] != supervoxels[4, 4, 35]
    assert set(mapping[1:].tolist()) == {3}


# --- agglomeration -----------------------------------------------------------------


def test_agglomerate_merges_exactly_the_pairs_below_threshold():
    rag = toy_rag([(1, 2, 0.1, 1), (2, 3, 0.5, 1), (3, 4, 0.2, 1), (4, 5, 0.35, 1)], 5)
    np.testing.assert_array_equal(agglomerate(rag, 0.3), [0, 1, 1, 3, 3, 5])
    np.testing.assert_array_equal(agglomerate(rag, 0.05), np.arange(6))


def test_agglomerate_uses_the_area_weighted_mean_of_combined_edges():
    # after 1+2 merge, their contact with 3 is (0.2*1 + 0.6*3) / 4 = 0.5: above 0.4
    rag = toy_rag([(1, 2, 0.1, 1), (1, 3, 0.2, 1), (2, 3, 0.6, 3)], 3)
    np.testing.assert_array_equal(agglomerate(rag, 0.4), [0, 1, 1, 3])
    np.testing.assert_array_equal(agglomerate(rag, 0.51), [0, 1, 1, 1])


def test_agglomerate_starts_from_an_initial_mapping():
    rag = toy_rag([(1, 2, 0.9, 1), (2, 3, 0.1, 4), (3, 4, 0.9, 1)], 4)
    initial = np.array([0, 50, 60, 60, 70])
    np.testing.assert_array_equal(agglomerate(rag, 0.5, mapping=initial), initial)
    np.testing.assert_array_equal(agglomerate(rag, 0.95, mapping=initial), [0, 50, 50, 50, 50])


def test_agglomerate_improves_the_gala_watershed_on_fibsem():
    supervoxels = fibsem("train-ws.lzf.h5").astype(np.uint32)
    boundary, truth = fibsem("train-p1.lzf.h5"), fibsem("train-gt.lzf.h5")
    rag = build_rag(supervoxels, boundary)
    scores = {}
    for threshold in (0.5, 0.7, 0.9):
        segmentation = agglomerate(rag, threshold)[supervoxels]
        scores[threshold] = (adapted_rand_error(truth, segmentation)[0],
                             *variation_of_information(truth, segmentation, ignore_labels=(0,)))
        print(f"agglomerate({threshold}) on fibsem-gala: ARE {scores[threshold][0]:.3f} "
              f"VI split {scores[threshold][1]:.3f} merge {scores[threshold][2]:.3f}")
    assert min(score[0] for score in scores.values()) < 0.05  # the watershed alone: 0.250


# --- edits -------------------------------------------------------------------------


@pytest.fixture
def agglomeration():
    # segments: 10 = {1, 2, 3}, 20 = {4, 5}, 30 = {6}
    return Agglomeration(np.array([0, 10, 10, 10, 20, 20, 30]))


def test_members_and_segments_follow_the_mapping(agglomeration):
    assert agglomeration.segments().tolist() == [10, 20, 30]
    assert agglomeration.members(20).tolist() == [4, 5]
    assert agglomeration.segment_of(6) == 30 and agglomeration.n_segments == 3
    assert agglomeration.next_id == 31


def test_merge_moves_the_smaller_segment_into_the_larger(agglomeration):
    edit = agglomeration.merge(20, 10)
    assert (edit.kind, edit.source, edit.target, edit.supervoxels.tolist()) == ("merge", 20, 10, [4, 5])
    assert agglomeration.mapping.tolist() == [0, 10, 10, 10, 10, 10, 30]
    assert sorted(agglomeration.members(10).tolist()) == [1, 2, 3, 4, 5]
    assert agglomeration.segments().tolist() == [10, 30]


def test_merge_refuses_a_segment_with_itself_or_an_unknown_one(agglomeration):
    with pytest.raises(ProofQuestError, match="itself"):
        agglomeration.merge(10, 10)
    with pytest.raises(ProofQuestError, match="99"):
        agglomeration.merge(10, 99)
    assert agglomeration.edits == []


def test_merge_then_undo_restores_mapping(agglomeration):
    before = agglomeration.mapping.copy()
    agglomeration.merge(10, 20)
    undo = agglomeration.undo(0)
    assert (undo.kind, undo.undoes, undo.source, undo.target) == ("undo", 0, 10, 20)
    np.testing.assert_array_equal(agglomeration.mapping, before)
    assert agglomeration.members(20).tolist() == [4, 5]


def test_split_moves_supervoxels_to_a_fresh_id_and_undo_restores(agglomeration):
    before = agglomeration.mapping.copy()
    edit = agglomeration.split(10, [3, 2])
    assert (edit.source, edit.target, edit.supervoxels.tolist()) == (10, 31, [2, 3])
    assert agglomeration.mapping.tolist() == [0, 10, 31, 31, 20, 20, 30]
    agglomeration.undo(0)
    np.testing.assert_array_equal(agglomeration.mapping, before)
    assert sorted(agglomeration.members(10).tolist()) == [1, 2, 3] and agglomeration.size(10) == 3
    assert 31 not in agglomeration.segments()
    assert agglomeration.split(10, [1]).target == 32  # ids are never reused


@pytest.mark.parametrize("supervoxels, message", [([1, 2, 3], "leave some"), ([1, 4], "not 10"),
                                                   ([], "at least one"), ([9], "1..6")])
def test_split_refuses_all_or_foreign_supervoxels(agglomeration, supervoxels, message):
    with pytest.raises(ProofQuestError, match=message):
        agglomeration.split(10, supervoxels)
    assert agglomeration.edits == [] and agglomeration.next_id == 31


def test_undo_refused_when_a_later_edit_touched_the_supervoxels(agglomeration):
    agglomeration.merge(20, 30)       # #0: 30 -> 20
    agglomeration.merge(10, 20)       # #1: 20 (with 6) -> 10
    with pytest.raises(ProofQuestError, match="supervoxel 6 was moved again by edit #1"):
        agglomeration.undo(0)
    agglomeration.undo(1)             # #2
    agglomeration.undo(0)             # allowed once #1 is undone
    assert agglomeration.mapping.tolist() == [0, 10, 10, 10, 20, 20, 30]


def test_undo_refused_when_already_undone(agglomeration):
    agglomeration.merge(10, 20)
    agglomeration.undo(0)
    with pytest.raises(ProofQuestError, match="already undone"):
        agglomeration.undo(0)


def test_undo_of_an_undo_redoes_the_edit(agglomeration):
    agglomeration.split(10, [1])
    after_split = agglomeration.mapping.copy()
    agglomeration.undo(0)
    agglomeration.undo(1)
    np.testing.assert_array_equal(agglomeration.mapping, after_split)
    with pytest.raises(ProofQuestError, match="already undone"):
        agglomeration.undo(0)


def test_undo_of_a_split_returns_to_its_segment_only_while_that_exists():
    grown = Agglomeration(np.array([0, 10, 10, 10, 20]))
    grown.split(10, [1])              # #0: 10 = {2, 3}, 21 = {1}
    grown.merge(10, 20)               # #1: 20 moves into 10, which lives on
    grown.undo(0)
    assert grown.mapping.tolist() == [0, 10, 10, 10, 10]
    gone = Agglomeration(np.array([0, 10, 10, 20, 20, 20]))
    gone.split(10, [1])               # #0: 10 = {2}, 21 = {1}
    gone.merge(10, 20)                # #1: 10 moves into 20 and is gone
    with pytest.raises(ProofQuestError, match="merged away"):
        gone.undo(0)


def test_an_edit_is_never_applied_twice(agglomeration):
    edit = agglomeration.merge(20, 30)
    with pytest.raises(ProofQuestError, match="never applied twice"):
        agglomeration.apply(edit)
    split = agglomeration.split(10, [1])
    with pytest.raises(ProofQuestError, match="never applied twice"):
        agglomeration.apply(split)


def test_apply_refuses_edits_that_do_not_fit_the_state(agglomeration):
    agglomeration.merge(20, 30)       # #0: 30 -> 20
    with pytest.raises(ProofQuestError, match="fresh segment id"):
        agglomeration.apply(Edit("split", [1], 10, 20))
    with pytest.raises(ProofQuestError, match="moves all of segment 10"):
        agglomeration.apply(Edit("merge", [1, 2], 10, 20))
    with pytest.raises(ProofQuestError, match="does not reverse edit #0"):
        agglomeration.apply(Edit("undo", [6], 20, 10, undoes=0))
    with pytest.raises(ProofQuestError, match="each supervoxel once"):
        agglomeration.apply(Edit("split", [1, 1], 10, 40))
    assert len(agglomeration.edits) == 1


def random_edits(agglomeration, n, seed, undo_share=0.2):
    """Apply ``n`` random merges, splits and undos (refused undos are skipped)."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        segments = agglomeration.segments()
        choice = rng.random()
        if choice < 0.4 and len(segments) > 1:
            a, b = rng.choice(segments, 2, replace=False)
            agglomeration.merge(a, b)
        elif choice < 1 - undo_share:
            segment = int(rng.choice(segments))
            members = agglomeration.members(segment)
            if len(members) > 1:
                agglomeration.split(segment, rng.choice(members, rng.integers(1, len(members)), replace=False))
        elif agglomeration.edits:
            try:
                agglomeration.undo(int(rng.integers(len(agglomeration.edits))))
            except ProofQuestError:
                pass


def test_reverse_index_matches_the_mapping_after_random_edits():
    initial = np.r_[0, np.random.default_rng(6).integers(1, 15, 60)]
    agglomeration = Agglomeration(initial)
    random_edits(agglomeration, 300, seed=6)
    mapping = agglomeration.mapping
    for segment in agglomeration.segments():
        np.testing.assert_array_equal(np.sort(agglomeration.members(segment)), np.flatnonzero(mapping == segment))
    assert set(agglomeration.segments().tolist()) == set(np.unique(mapping[1:]).tolist())
    assert len({edit.kind for edit in agglomeration.edits}) == 3


def test_replay_of_the_log_equals_the_live_state():
    initial = np.r_[0, np.random.default_rng(7).integers(1, 12, 50)]
    live = Agglomeration(initial)
    random_edits(live, 200, seed=7)
    stored = json.loads(json.dumps([edit.to_dict() for edit in live.edits]))
    replayed = Agglomeration.replay(initial, [Edit.from_dict(row) for row in stored])
    np.testing.assert_array_equal(replayed.mapping, live.mapping)
    assert replayed.edits == live.edits and replayed.next_id == live.next_id


def test_undoing_every_edit_newest_first_restores_the_initial_mapping():
    initial = np.r_[0, np.random.default_rng(8).integers(1, 10, 40)]
    agglomeration = Agglomeration(initial)
    random_edits(agglomeration, 100, seed=8, undo_share=0)
    for index in reversed(range(len(agglomeration.edits))):
        agglomeration.undo(index)
    np.testing.assert_array_equal(agglomeration.mapping, initial)


def test_edit_dict_round_trip_is_json_safe():
    edit = Edit("undo", np.array([3, 1], np.uint32), 2 ** 40, 5, undoes=4)
    data = json.loads(json.dumps(edit.to_dict()))
    assert Edit.from_dict(data) == edit
    assert hash(Edit.from_dict(data)) == hash(edit)
    with pytest.raises(ValueError):
        edit.supervoxels[0] = 9


def test_mapping_is_a_read_only_view(agglomeration):
    with pytest.raises(ValueError):
        agglomeration.mapping[1] = 99
    with pytest.raises(ValueError):
        agglomeration.members(10)[0] = 99


def test_materialize_equals_mapping_lookup(agglomeration):
    agglomeration.merge(20, 30)
    supervoxels = np.random.default_rng(9).integers(0, 7, (5, 6, 7)).astype(np.uint32)
    np.testing.assert_array_equal(agglomeration.materialize(supervoxels), agglomeration.mapping[supervoxels])
    labels = np.zeros(supervoxels.shape, agglomeration.mapping.dtype)
    for box, block in agglomeration.materialize_blocks(lambda b: supervoxels[b.slices], supervoxels.shape, (2, 4, 3)):
        labels[box.slices] = block
    np.testing.assert_array_equal(labels, agglomeration.mapping[supervoxels])


def test_materialize_volume_reads_the_supervoxel_layer_chunk_by_chunk(agglomeration):
    supervoxels = np.random.default_rng(10).integers(0, 7, (4, 8, 8)).astype(np.uint32)

    class Volume:
        shape, chunks = supervoxels.shape, (2, 4, 4)

        def read(self, layer, bbox):
            assert layer == "supervoxels"
            return supervoxels[bbox.slices]

    box = BBox((1, 2, 3), (4, 8, 7))
    blocks = list(agglomeration.materialize_volume(Volume(), box))
    assert sum(b.size for b, _ in blocks) == box.size
    for b, labels in blocks:
        np.testing.assert_array_equal(labels, agglomeration.mapping[supervoxels[b.slices]])
