"""Serial sections: supervoxels made section by section, contacts across sections featured apart, frames sized
from the resolution, parts that touch only across sections framed."""

import json

import numpy as np
import pytest
from conftest import shared_data

from game.app import pipeline
from game.cli import main
from game.geometry import BBox
from game.puzzles.framing import (
    MARGIN_PX,
    FrameSpec,
    frame_across_sections,
    frame_decision,
    frame_spec,
    inside_share,
    slices_for_anisotropy,
)
from game.segmentation.merging import agglomerate, section_linkage
from game.segmentation.rag import RAG, build_rag, build_rag_blockwise, edges_between
from game.segmentation.watershed import watershed_sections


def two_cells_shifting(height=40, width=40):
    """Two cells side by side whose border moves by a fifth of the width from one section to the next.

    Returns the labels (truth) and a membrane map drawn section by section: high on each section's border only.
    """
    truth = np.ones((2, height, width), np.uint32)
    truth[0, :, width // 2:] = 2
    truth[1, :, int(width * 0.3):] = 2
    boundary = np.zeros(truth.shape, np.uint8)
    boundary[:, :, :-1][truth[:, :, 1:] != truth[:, :, :-1]] = 255
    boundary[:, :, 1:][truth[:, :, 1:] != truth[:, :, :-1]] = 255
    return truth, boundary


def test_supervoxels_made_section_by_section_never_cross_a_section():
    _, boundary = two_cells_shifting()
    seen = []
    labels = watershed_sections(boundary, first_id=10, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    ids = [set(np.unique(labels[z])) - {0} for z in range(2)]
    assert ids[0].isdisjoint(ids[1])
    assert set().union(*ids) == set(range(11, 11 + len(ids[0]) + len(ids[1])))  # dense, after first_id


def test_faces_across_sections_are_counted_apart_and_add_up_across_blocks():
    supervoxels = np.array([[[1, 1, 2]], [[3, 3, 3]]], np.uint32)  # (2, 1, 3)
    boundary = np.array([[[0.2, 0.4, 0.6]], [[0.0, 0.0, 0.0]]], np.float32)
    rag = build_rag(supervoxels, boundary)
    edges = {(int(u), int(v)): (int(a), int(z)) for u, v, a, z in zip(rag.u, rag.v, rag.area, rag.z_area)}
    assert edges == {(1, 2): (1, 0), (1, 3): (2, 2), (2, 3): (1, 1)}
    np.testing.assert_allclose(rag.linkage, rag.mean)  # by default agglomeration merges by the mean boundary
    blockwise = build_rag_blockwise(lambda b: supervoxels[b.slices], lambda b: boundary[b.slices],
                                    supervoxels.shape, (1, 1, 2))
    np.testing.assert_array_equal(blockwise.z_area, rag.z_area)
    merged = edges_between(rag, np.array([0, 1, 1, 3]))  # 1 and 2 one segment: its faces add up
    assert merged.area.tolist() == [3] and merged.z_area.tolist() == [3]
    # a RAG saved before faces were told apart loads with none known, linking by the mean
    old = RAG.from_arrays({k: v for k, v in rag.to_arrays().items() if k not in ("z_area", "linkage")})
    assert old.z_area.tolist() == [0, 0, 0] and np.allclose(old.linkage, old.mean)


def test_a_contact_across_sections_links_by_how_much_of_the_smaller_profile_it_covers():
    rag = RAG(u=np.array([1, 1], np.uint32), v=np.array([2, 3], np.uint32), mean=np.array([0.1, 0.1], np.float32),
              min=np.zeros(2, np.float32), max=np.ones(2, np.float32), area=np.array([30, 10]), n_supervoxels=3,
              z_area=np.array([30, 0]))
    sizes = np.array([0, 100, 40, 50])
    # across: 30 faces over the smaller profile of 40 voxels leave a quarter uncovered; in-plane: the mean
    np.testing.assert_allclose(section_linkage(rag, sizes), [0.25, 0.1], rtol=1e-6)


def test_cells_drawn_per_section_no_longer_merge_through_the_sections():
    truth, boundary = two_cells_shifting()
    supervoxels = watershed_sections(boundary)
    rag = build_rag(supervoxels, boundary)
    sizes = np.bincount(supervoxels.ravel())
    plain = agglomerate(rag, 0.5)[supervoxels]
    linked = agglomerate(rag.with_linkage(section_linkage(rag, sizes)), 0.5)[supervoxels]
    assert len(np.unique(plain)) == 1  # faces across sections lie inside cells of the per-section map
    inside = boundary == 0
    assert len(np.unique(linked)) == 2
    assert all(len(np.unique(linked[inside][truth[inside] == cell])) == 1 for cell in (1, 2))


def test_the_anisotropic_path_goes_with_the_resolution_unless_told():
    assert pipeline.per_section((30, 6, 6), 3.0) and not pipeline.per_section((10, 10, 10), 3.0)
    assert pipeline.per_section((10, 10, 10), 3.0, "on") and not pipeline.per_section((30, 6, 6), 3.0, "off")
    with pytest.raises(Exception, match="--anisotropic"):
        pipeline.per_section((30, 6, 6), 3.0, "maybe")


def test_snemi_segments_better_section_by_section(capsys, tmp_path):
    d = shared_data("snemi-mini")

    def run(*argv):
        code = main([str(a) for a in ("--home", tmp_path) + argv])
        out = capsys.readouterr()
        assert code == 0, out.err
        return out.out

    run("import", "snemi", "--image", d / "train-probabilities.tif", "--boundary", d / "train-probabilities.tif",
        "--invert-boundary", "--groundtruth", d / "train-labels.tif", "--resolution", "30,6,6")
    error = {}
    for choice in ("off", "on"):
        info = json.loads(run("agglomerate", "snemi", "--anisotropic", choice))
        assert info["supervoxels_per_section"] == (choice == "on")
        error[choice] = json.loads(run("evaluate", "snemi", "--json"))["adapted_rand_error"]
    # at the default threshold a 3D flood merges most cells through the sections (bench/bench_anisotropic.py)
    assert error["on"] < error["off"] - 0.3
    assert json.loads(run("agglomerate", "snemi"))["supervoxels_per_section"]  # auto: 30 nm sections of 6 nm


def test_frames_keep_their_depth_and_field_of_view_in_nanometres():
    assert slices_for_anisotropy((30, 6, 6)) == 7 and slices_for_anisotropy((50, 4.6, 4.6)) == 5
    assert slices_for_anisotropy((8, 8, 8)) == 11
    assert frame_spec((30, 6, 6)) == FrameSpec() == frame_spec(None)
    assert frame_spec((50, 4.6, 4.6)) == FrameSpec(5, (128, 256))  # 576..1152 nm, in 16-voxel steps
    assert frame_spec((40, 2, 2)).window == (288, 384)  # never wider than the image's pixels
    assert inside_share(2, 20, 5) == inside_share(17, 20, 5) == 1.0  # a stack of 5 around sections 2..17
    assert inside_share(0, 20, 5) == inside_share(19, 20, 5) == 3 / 5  # two sections of padding


def test_a_stack_of_fewer_sections_opens_on_its_middle():
    a = np.zeros((12, 120, 120), bool)
    b = np.zeros_like(a)
    a[:, 30:90, 30:60], b[:, 30:90, 60:90] = True, True
    frame = frame_decision(a, b, BBox.from_shape(a.shape), a.shape, (6, 60, 59), FrameSpec(5, (96, 192)))
    assert frame.slices == 5 and frame.key == 2 and frame.box.shape[0] == 5 and frame.across == 0


def test_parts_that_touch_only_across_sections_are_framed_where_one_ends_over_the_other():
    a = np.zeros((14, 120, 120), bool)
    b = np.zeros_like(a)
    a[:7, 40:80, 40:80] = True  # a neurite's profile ends on section 6 ...
    b[7:, 45:85, 42:82] = True  # ... and goes on, a little shifted, as another segment
    assert frame_decision(a, b, BBox.from_shape(a.shape), a.shape, (6, 60, 60)) is None  # never side by side
    frame = frame_across_sections(a, b, BBox.from_shape(a.shape), a.shape, (6, 60, 60))
    assert frame.across == 1 and frame.point[0] == 6 and frame.key == frame.slices // 2
    z, y, x = frame.point
    assert a[z, y, x] and b[z + 1, y, x] and frame.margin_px >= MARGIN_PX
    assert min(frame.areas_px) > 0 and frame.enclosure == 0.0
    # over a damaged section: the stack widens to hold both sides of the gap
    c = np.zeros_like(a)
    c[10:, 45:85, 42:82] = True
    gap = frame_across_sections(a, c, BBox.from_shape(a.shape), a.shape, (6, 60, 60), gap=4)
    assert gap.across == 4 and gap.slices == 9 and gap.point[0] == 6
    assert gap.start[0] == 4 and gap.key == 2  # centred on the gap: 2 sections, the 5 of the gap, 2 sections
    assert frame_across_sections(a, c, BBox.from_shape(a.shape), a.shape, (6, 60, 60), gap=15) is None
