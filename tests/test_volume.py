"""The volume store, the format readers and the export writers."""

from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import zarr
from PIL import Image

from game.errors import ProofQuestError
from game.geometry import BBox
from game.volumes.volume import VolumeStore, copy_into, export_array, open_array

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHAPE = (6, 10, 12)
CHUNKS = (2, 4, 4)
RESOLUTION = (30, 4, 4)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def image(rng):
    return rng.integers(0, 256, SHAPE, dtype=np.uint8)


@pytest.fixture
def labels(rng):
    return rng.integers(0, 50, SHAPE, dtype=np.uint32)


@pytest.fixture
def store(tmp_path):
    return VolumeStore(tmp_path / "volumes")


def make_volume(store, name, image, labels=None, **kw):
    with store.create(name, shape=image.shape, resolution=RESOLUTION, chunks=CHUNKS, **kw) as writer:
        writer.write("image", None, image)
        if labels is not None:
            writer.write("supervoxels", None, labels)
        writer.attrs["source"] = "test"
    return store.open(name)


def slabs(array, depth):
    for z in range(0, array.shape[0], depth):
        box = BBox((z, 0, 0), (min(z + depth, array.shape[0]),) + array.shape[1:])
        yield box, array[box.slices]


def corrupt_a_chunk(volume, layer, chunk_index):
    chunk = volume.path / "volume.zarr" / layer / "c" / "/".join(str(i) for i in chunk_index)
    assert chunk.exists()
    chunk.write_bytes(b"not a zstd frame")


# --- the store ------------------------------------------------------------

def test_created_volume_reads_back_layers_and_metadata(store, image, labels):
    volume = make_volume(store, "demo", image, labels)
    assert store.names() == ["demo"] and store.exists("demo")
    assert volume.name == "demo" and volume.shape == SHAPE
    assert volume.resolution == (30.0, 4.0, 4.0) and volume.chunks == CHUNKS
    assert volume.layers == ("image", "supervoxels") and volume.has("image") and not volume.has("groundtruth")
    assert volume.dtype("supervoxels") == np.uint32
    assert volume.attrs == {"source": "test"} and volume.created
    np.testing.assert_array_equal(volume.read("image"), image)
    np.testing.assert_array_equal(volume.read("supervoxels"), labels)


def test_crop_reads_only_the_chunks_it_overlaps(store, image):
    volume = make_volume(store, "demo", image)
    corrupt_a_chunk(volume, "image", (2, 2, 2))  # the far corner: z 4..6, y 8..10, x 8..12
    crop = BBox((1, 2, 3), (3, 7, 8))
    np.testing.assert_array_equal(volume.read("image", crop), image[crop.slices])
    with pytest.raises(ProofQuestError, match="corrupt"):
        volume.read("image")


def test_crop_past_the_edge_is_padded_with_fill(store, image):
    volume = make_volume(store, "demo", image)
    crop = volume.read("image", BBox((-2, 8, -1), (2, 13, 3)), fill=7)
    assert crop.shape == (4, 5, 4)
    np.testing.assert_array_equal(crop[2:, :2, 1:], image[0:2, 8:10, 0:3])
    assert (crop[:2] == 7).all() and (crop[:, 2:] == 7).all() and (crop[:, :, 0] == 7).all()
    assert (volume.read("image", BBox((10, 0, 0), (12, 2, 2))) == 0).all()


def test_exception_inside_create_leaves_no_folder(store, image):
    with pytest.raises(RuntimeError):
        with store.create("broken", shape=SHAPE, resolution=RESOLUTION) as writer:
            writer.write("image", None, image)
            raise RuntimeError("import failed")
    assert store.names() == [] and list(store.root.iterdir()) == []


def test_failed_overwrite_keeps_the_old_volume(store, image):
    make_volume(store, "demo", image)
    with pytest.raises(RuntimeError):
        with store.create("demo", shape=(2, 2, 2), resolution=RESOLUTION, overwrite=True) as writer:
            writer.write("image", None, np.zeros((2, 2, 2), np.uint8))
            raise RuntimeError("import failed")
    np.testing.assert_array_equal(store.open("demo").read("image"), image)
    assert [p.name for p in store.root.iterdir()] == ["demo"]


def test_overwrite_replaces_the_volume_once_complete(store, image, labels):
    old = make_volume(store, "demo", image, labels)
    with store.create("demo", shape=SHAPE, resolution=(8, 8, 8), chunks=CHUNKS, overwrite=True) as writer:
        # The old volume stays readable until the new one is complete.
        writer.write("image", None, 255 - old.read("image"))
    volume = store.open("demo")
    assert volume.layers == ("image",) and volume.resolution == (8.0, 8.0, 8.0)
    np.testing.assert_array_equal(volume.read("image"), 255 - image)
    assert [p.name for p in store.root.iterdir()] == ["demo"]


def test_existing_name_without_overwrite_is_refused(store, image):
    make_volume(store, "demo", image)
    with pytest.raises(ProofQuestError, match="already exists.*overwrite=True"):
        with store.create("demo", shape=SHAPE, resolution=RESOLUTION):
            pass


@pytest.mark.parametrize("resolution, axis", [((30, -4, 4), "y = -4"), ((0, 4, 4), "z = 0")])
def test_non_positive_resolution_is_named(store, resolution, axis):
    with pytest.raises(ProofQuestError, match=f"resolution {axis}"):
        with store.create("demo", shape=SHAPE, resolution=resolution):
            pass


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "../up", "with space"])
def test_invalid_volume_names_are_refused(store, name):
    with pytest.raises(ProofQuestError, match="invalid volume name"):
        with store.create(name, shape=SHAPE, resolution=RESOLUTION):
            pass


def test_float_labels_are_refused_with_a_conversion_hint(store):
    with pytest.raises(ProofQuestError, match="groundtruth.*integers.*float32.*convert"):
        with store.create("demo", shape=SHAPE, resolution=RESOLUTION) as writer:
            writer.write("groundtruth", None, np.ones(SHAPE, np.float32))
    assert store.names() == []


def test_float_boundary_is_refused_with_a_conversion_hint(store):
    with pytest.raises(ProofQuestError, match="boundary.*uint8.*probability x 255"):
        with store.create("demo", shape=SHAPE, resolution=RESOLUTION) as writer:
            writer.create_layer("boundary", np.float32)


@pytest.mark.parametrize("layer, values, message", [
    ("supervoxels", np.array([-1, 3], np.int32), "-1..3.*non-negative"),
    ("image", np.array([0, 4095], np.uint16), "0..4095.*rescale"),
])
def test_values_that_do_not_fit_the_layer_are_refused(store, layer, values, message):
    with pytest.raises(ProofQuestError, match=message):
        with store.create("demo", shape=(1, 1, 2), resolution=RESOLUTION) as writer:
            writer.write(layer, None, values.reshape(1, 1, 2))


def test_signed_labels_are_stored_unsigned(store):
    labels = np.arange(8, dtype=np.int64).reshape(2, 2, 2)
    with store.create("demo", shape=(2, 2, 2), resolution=RESOLUTION) as writer:
        writer.write("groundtruth", None, labels.astype(np.int32))
        writer.write("supervoxels", None, labels)
    volume = store.open("demo")
    assert volume.dtype("groundtruth") == np.uint32 and volume.dtype("supervoxels") == np.uint64
    np.testing.assert_array_equal(volume.read("groundtruth"), labels)


def test_layer_shape_mismatch_names_layer_and_both_shapes(store):
    with pytest.raises(ProofQuestError, match=r"'groundtruth' has shape \(6, 10, 11\).*\(6, 10, 12\)"):
        with store.create("demo", shape=SHAPE, resolution=RESOLUTION) as writer:
            copy_into(writer, "groundtruth", np.zeros((6, 10, 11), np.uint32))


def test_unknown_layer_is_refused_listing_the_layers(store):
    with pytest.raises(ProofQuestError, match="unknown layer 'imgae'.*image, boundary"):
        with store.create("demo", shape=SHAPE, resolution=RESOLUTION) as writer:
            writer.create_layer("imgae", np.uint8)


def test_unknown_volume_lists_the_known_ones(store, image):
    make_volume(store, "alpha", image)
    make_volume(store, "beta", image)
    with pytest.raises(ProofQuestError, match="no volume 'gamma'.*alpha, beta"):
        store.open("gamma")
    with pytest.raises(ProofQuestError, match="none yet"):
        VolumeStore(store.root / "empty").open("gamma")


def test_missing_layer_lists_the_present_ones(store, image):
    with pytest.raises(ProofQuestError, match="no layer 'boundary'; it has: image"):
        make_volume(store, "demo", image).read("boundary")


def test_corrupt_store_is_reported(store, image):
    volume = make_volume(store, "demo", image)
    (volume.path / "volume.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(ProofQuestError, match="'demo'.*corrupt"):
        store.open("demo")
    (store.root / "stray").mkdir()
    with pytest.raises(ProofQuestError, match="'stray'.*corrupt"):
        store.open("stray")


def test_delete_removes_the_volume(store, image):
    make_volume(store, "demo", image)
    store.delete("demo")
    assert store.names() == [] and list(store.root.iterdir()) == []
    with pytest.raises(ProofQuestError, match="no volume 'demo'"):
        store.delete("demo")


def test_side_arrays_round_trip_and_replace_atomically(store, image):
    mapping = np.arange(5, dtype=np.uint64)
    rag = {"u": np.array([1, 2]), "v": np.array([2, 3]), "mean": np.array([0.5, 0.25])}
    with store.create("demo", shape=SHAPE, resolution=RESOLUTION) as writer:
        writer.write("image", None, image)
        writer.save_side("mapping", mapping)
    volume = store.open("demo")
    volume.save_side("rag", rag)
    np.testing.assert_array_equal(volume.load_side("mapping"), mapping)
    loaded = volume.load_side("rag")
    assert set(loaded) == set(rag) and all(np.array_equal(loaded[k], rag[k]) for k in rag)
    volume.save_side("mapping", mapping[::-1])
    np.testing.assert_array_equal(store.open("demo").load_side("mapping"), mapping[::-1])
    assert sorted(p.name for p in volume.path.iterdir()) == ["mapping.npy", "rag.npz", "volume.zarr"]
    with pytest.raises(ProofQuestError, match="no side array 'edits'.*mapping, rag"):
        volume.load_side("edits")


def test_update_attrs_persists_and_merges(store, image):
    volume = make_volume(store, "demo", image)
    volume.update_attrs(segmentation_threshold=0.4)
    assert store.open("demo").attrs == {"source": "test", "segmentation_threshold": 0.4}
    with pytest.raises(ProofQuestError, match="JSON"):
        volume.update_attrs(bad=object())


def test_copy_into_copies_a_source_slab_by_slab_with_progress(store, tmp_path, labels):
    np.save(tmp_path / "labels.npy", labels.astype(np.int32))
    calls = []
    with store.create("demo", shape=SHAPE, resolution=RESOLUTION, chunks=(4, 4, 4)) as writer:
        with open_array(tmp_path / "labels.npy") as source:
            copy_into(writer, "groundtruth", source, progress=lambda done, total: calls.append((done, total)))
        probability = labels / labels.max()
        copy_into(writer, "boundary", probability, convert=lambda p: np.round(p * 255).astype(np.uint8))
    volume = store.open("demo")
    assert calls == [(4, 6), (6, 6)]
    assert volume.dtype("groundtruth") == np.uint32
    np.testing.assert_array_equal(volume.read("groundtruth"), labels)
    np.testing.assert_array_equal(volume.read("boundary"), np.round(probability * 255))


# --- readers and writers ----------------------------------------------------

@pytest.mark.parametrize("fmt, name", [("h5", "out.h5"), ("tif", "out.tif"), ("npy", "out.npy"),
                                       ("zarr", "out.zarr")])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.uint64, np.float32])
def test_export_then_open_round_trips_values_and_attrs(tmp_path, rng, fmt, name, dtype):
    data = (rng.random(SHAPE) * 200).astype(dtype)
    attrs = {"resolution": [30.0, 4.0, 4.0], "layer": "supervoxels"}
    path = export_array(tmp_path / name, fmt, SHAPE, dtype, slabs(data, 4), attrs=attrs, chunks=CHUNKS)
    with open_array(path) as array:
        assert array.shape == SHAPE and array.dtype == dtype and array.ndim == 3
        np.testing.assert_array_equal(array[1:4, 2:9, 3:5], data[1:4, 2:9, 3:5])
        np.testing.assert_array_equal(np.asarray(array), data)
        assert array.attrs == attrs
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_tiff_export_assembles_chunk_tiles_into_slabs(tmp_path, image):
    tiles = ((box, image[box.slices]) for box in BBox.from_shape(SHAPE).tiles(CHUNKS))
    export_array(tmp_path / "out.tif", None, SHAPE, np.uint8, tiles)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "out.tif"), image)


def test_tiff_export_refuses_slabs_out_of_order(tmp_path, image):
    with pytest.raises(ProofQuestError, match="z-slab order"):
        export_array(tmp_path / "out.tif", "tif", SHAPE, np.uint8, reversed(list(slabs(image, 2))))
    assert list(tmp_path.iterdir()) == []


def test_incomplete_export_leaves_the_old_file_intact(tmp_path, image):
    target = tmp_path / "out.h5"
    target.write_bytes(b"old")
    with pytest.raises(ProofQuestError, match="incomplete"):
        export_array(target, "h5", SHAPE, np.uint8, list(slabs(image, 4))[:1], overwrite=True)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.h5"]
    with pytest.raises(ProofQuestError, match="already exists"):
        export_array(target, "h5", SHAPE, np.uint8, slabs(image, 4))


def test_hdf5_dataset_is_found_or_listed(tmp_path, image):
    with h5py.File(tmp_path / "one.h5", "w") as file:
        file.create_dataset("volumes/raw", data=image)
    with h5py.File(tmp_path / "two.h5", "w") as file:
        file.create_dataset("raw", data=image)
        file.create_dataset("labels", data=image)
    with open_array(tmp_path / "one.h5") as array:
        np.testing.assert_array_equal(array[2], image[2])
    with open_array(f"{tmp_path / 'two.h5'}:/labels") as array:
        assert array.source.endswith("two.h5:labels")
    with pytest.raises(ProofQuestError, match="no dataset given; it holds: labels, raw"):
        open_array(tmp_path / "two.h5")
    with pytest.raises(ProofQuestError, match="no dataset 'stack'; it holds: labels, raw"):
        open_array(f"{tmp_path / 'two.h5'}:stack")


def test_zarr_group_array_is_chosen_by_path(tmp_path, image, labels):
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    group.create_array("raw", data=image, chunks=CHUNKS)
    group.create_array("seg/labels", data=labels, chunks=CHUNKS)
    with open_array(f"{tmp_path / 'g.zarr'}:seg/labels") as array:
        np.testing.assert_array_equal(array[...], labels)
    with pytest.raises(ProofQuestError, match="no array given; it holds: raw, seg/labels"):
        open_array(tmp_path / "g.zarr")


def test_a_zarr_store_named_by_url_opens_like_a_folder_and_bad_urls_are_named(tmp_path, image, labels):
    import uuid
    url = f"memory://volumes-{uuid.uuid4().hex}/g.zarr"  # fsspec's in-memory store stands for an object store
    group = zarr.open_group(url, mode="w")
    group.create_array("raw", data=image, chunks=CHUNKS)
    group.create_array("seg/labels", data=labels, chunks=CHUNKS)
    with open_array(f"{url}:seg/labels") as array:
        np.testing.assert_array_equal(array[...], labels)
    with open_array(f"{url}/:raw") as array:
        np.testing.assert_array_equal(array[1], image[1])
    with pytest.raises(ProofQuestError, match="no array given; it holds: raw, seg/labels"):
        open_array(url)
    with pytest.raises(ProofQuestError, match="not found"):
        open_array(url.replace("g.zarr", "missing.zarr"))
    with pytest.raises(ProofQuestError, match="must be a zarr store"):
        open_array(url.replace("g.zarr", "raw.h5"))
    with pytest.raises(ProofQuestError, match="cannot open"):
        open_array("nosuchscheme://bucket/g.zarr")
    zarr.open_group(tmp_path / "local.zarr", mode="w").create_array("raw", data=image, chunks=CHUNKS)
    with open_array(f"file://{tmp_path / 'local.zarr'}:raw") as array:  # a file:// URL is a local path
        np.testing.assert_array_equal(array[...], image)


def test_only_a_scheme_at_the_start_makes_a_url_and_the_web_import_never_opens_one(tmp_path):
    from conftest import _settings

    from game.app import intake
    from game.app.instance import Instance
    from game.volumes.formats import is_url
    assert is_url("s3://bucket/v.zarr") and is_url("memory://x/v.zarr:raw")
    assert not is_url("file:///data/v.zarr") and not is_url("/allowed/v.zarr:memory://x.zarr")
    assert not is_url("v.zarr") and not is_url("relative/s3://x.zarr")
    inst = Instance(tmp_path, _settings(tmp_path))
    try:
        for spec in ("memory://x/v.zarr:raw", "file:///etc/passwd", "v.zarr:memory://x.zarr", "s3://b/v.zarr"):
            with pytest.raises(ProofQuestError):
                intake.resolve_server_path(inst, spec)
    finally:
        inst.store.close()


def test_volume_store_layers_open_as_zarr_arrays(store, image):
    volume = make_volume(store, "demo", image)
    with open_array(f"{volume.path / 'volume.zarr'}:image") as array:
        np.testing.assert_array_equal(array[...], image)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_slice_folder_reads_slices_in_natural_order(tmp_path, image, suffix):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z in range(SHAPE[0]):
        path = folder / f"slice{z * 5}{suffix}"  # slice5 must come before slice10
        if suffix == ".png":
            Image.fromarray(image[z]).save(path)
        else:
            tifffile.imwrite(path, image[z])
    with open_array(folder) as array:
        assert array.shape == SHAPE and array.dtype == np.uint8
        np.testing.assert_array_equal(array[1:5:2, 3:, :4], image[1:5:2, 3:, :4])
        np.testing.assert_array_equal(array[-1], image[-1])
        np.testing.assert_array_equal(array[...], image)


def test_slice_folder_with_a_differing_slice_names_it(tmp_path, image):
    for z in range(3):
        Image.fromarray(image[z]).save(tmp_path / f"{z}.png")
    Image.fromarray(image[3, :5]).save(tmp_path / "3.png")
    with pytest.raises(ProofQuestError, match=r"3\.png has shape"):
        open_array(tmp_path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ProofQuestError, match=r"file not found: .*nothing\.h5"):
        open_array(f"{tmp_path / 'nothing.h5'}:stack")
    with pytest.raises(ProofQuestError, match=r"file not found: .*nothing\.tif$"):
        open_array(tmp_path / "nothing.tif")


def test_single_2d_image_is_refused(tmp_path, image):
    tifffile.imwrite(tmp_path / "plane.tif", image[0])
    np.save(tmp_path / "plane.npy", image[0])
    Image.fromarray(image[0]).save(tmp_path / "plane.png")
    for name in ("plane.tif", "plane.npy", "plane.png"):
        with pytest.raises(ProofQuestError, match="2D image.*needs z slices"):
            open_array(tmp_path / name)


def test_unsupported_and_corrupt_files_are_refused(tmp_path):
    (tmp_path / "volume.nrrd").write_bytes(b"NRRD0004")
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    (tmp_path / "bad.npy").write_bytes(b"not npy")
    (tmp_path / "bad.tif").write_bytes(b"not tiff")
    with pytest.raises(ProofQuestError, match="unsupported format '.nrrd'"):
        open_array(tmp_path / "volume.nrrd")
    for name, kind in [("bad.h5", "HDF5"), ("bad.npy", ".npy"), ("bad.tif", "TIFF")]:
        with pytest.raises(ProofQuestError, match=f"cannot read .*{name} as {kind}"):
            open_array(tmp_path / name)


# --- the real data ----------------------------------------------------------

def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real EM data not found at {path}")
    return path


@pytest.mark.parametrize("name, dtype", [("train-image.h5", np.uint8), ("train-gt.lzf.h5", np.int32),
                                         ("train-p1.lzf.h5", np.float32), ("train-ws.lzf.h5", np.int32)])
def test_fibsem_gala_hdf5_files_open_lazily(name, dtype):
    with open_array(need(DATA / "fibsem-gala" / name)) as array:
        assert array.shape == (50, 100, 200) and array.dtype == dtype
        with h5py.File(DATA / "fibsem-gala" / name, "r") as file:
            np.testing.assert_array_equal(array[10:12, 5:50, 100:], file["stack"][10:12, 5:50, 100:])


@pytest.mark.parametrize("name, dtype", [("train-labels.tif", np.uint8), ("train-probabilities.tif", np.uint8),
                                         ("train-fragments.tif", np.uint16)])
def test_snemi_mini_tiffs_open_lazily(name, dtype):
    with open_array(need(DATA / "snemi-mini" / name)) as array:
        assert array.shape == (32, 160, 160) and array.dtype == dtype
        np.testing.assert_array_equal(array[5:7, 20:90], tifffile.imread(DATA / "snemi-mini" / name)[5:7, 20:90])


def test_fibsem_gala_imports_into_the_store(store):
    folder = need(DATA / "fibsem-gala")
    with store.create("fibsem", shape=(50, 100, 200), resolution=(10, 10, 10)) as writer:
        for layer, name in [("image", "train-image.h5"), ("groundtruth", "train-gt.lzf.h5"),
                            ("supervoxels", "train-ws.lzf.h5")]:
            with open_array(f"{folder / name}:stack") as source:
                copy_into(writer, layer, source)
    volume = store.open("fibsem")
    crop = BBox((20, 40, 150), (30, 110, 230))
    with h5py.File(folder / "train-ws.lzf.h5", "r") as file:
        expected = np.zeros(crop.shape, np.int32)
        expected[:, :60, :50] = file["stack"][20:30, 40:100, 150:200]
    np.testing.assert_array_equal(volume.read("supervoxels", crop), expected)
    assert volume.dtype("supervoxels") == np.uint32
    assert len(np.unique(volume.read("supervoxels"))) == 203
