"""The on-disk volume store: chunked layers of one EM volume, plus small side arrays.

Layout of a store folder (``instance/volumes/``)::

    NAME/volume.zarr/        zarr v3 group; its attributes hold the metadata
        image/               uint8 EM intensities
        supervoxels/         uint32 (uint64 when needed) dense ids 1..N, 0 = none
        groundtruth/         optional labels, 0 = ignore (neurons in 3D, or per section: attrs["truth"])
        boundary/            optional uint8 membrane probability x 255
        membranes/           optional uint8 membrane mask x 255 given as ground truth (a training target)
        segmentation/        optional imported initial segmentation
    NAME/SIDE.npy|.npz       side arrays: the initial mapping, the RAG, ...

The side arrays live beside the zarr group, not inside it, because zarr warns
about any foreign file in a group. Every write that a reader could see is a
rename of a complete file or folder: a volume appears only when its import
finished, and a side array is never half written.

The readers and writers of array file formats live in :mod:`game.volumes.formats`;
``open_array`` and ``export_array`` are re-exported here as the contract names them.
"""

from __future__ import annotations

import json
import math
import os
import re
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import zarr

from game.errors import ProofQuestError
from game.geometry import BBox
from game.progress import ProgressCallback
from game.volumes.formats import SourceArray, atomic_path, export_array, open_array, remove_path

__all__ = ["VolumeStore", "Volume", "VolumeWriter", "copy_into", "open_array", "export_array",
           "LAYERS", "LABEL_LAYERS", "INTENSITY_LAYERS", "DEFAULT_CHUNKS"]

INTENSITY_LAYERS = ("image", "boundary", "membranes")
LABEL_LAYERS = ("supervoxels", "groundtruth", "segmentation")
LAYERS = INTENSITY_LAYERS + LABEL_LAYERS
DEFAULT_CHUNKS = (32, 128, 128)
GROUP = "volume.zarr"
SIDE_SUFFIXES = (".npy", ".npz")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


# --- validation -------------------------------------------------------------

def check_name(name: str, what: str = "volume") -> str:
    """A volume or side-array name: letters, digits, ``-``, ``_`` and ``.``, not starting with ``.``."""
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 100:
        raise ProofQuestError(f"invalid {what} name {name!r}: use letters, digits, '-', '_' and '.', "
                              "starting with a letter or digit")
    return name


def check_shape(shape: Sequence[int], what: str = "shape") -> tuple[int, int, int]:
    """Three positive integers (z, y, x)."""
    values = tuple(shape)
    if len(values) != 3 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in values):
        raise ProofQuestError(f"{what} must be 3 positive integers (z, y, x), got {values}")
    return tuple(int(v) for v in values)


def check_resolution(resolution: Sequence[float]) -> tuple[float, float, float]:
    """Three positive voxel sizes (z, y, x) in nanometres."""
    values = tuple(resolution)
    if len(values) != 3:
        raise ProofQuestError(f"resolution needs 3 voxel sizes (z, y, x) in nm, got {values}")
    for axis, value in zip("zyx", values):
        if not isinstance(value, (int, float, np.number)) or not math.isfinite(value) or value <= 0:
            raise ProofQuestError(f"resolution {axis} = {value} nm: a voxel size must be a positive number "
                                  "of nanometres")
    return tuple(float(v) for v in values)


# Voxel sizes outside this range (nm) are no EM: micrometres or metres below, picometres or a typo above.
RESOLUTION_NM = (0.1, 10_000.0)


def check_resolution_order(resolution: Sequence[float], shape: Sequence[int]) -> tuple[float, float, float]:
    """A resolution (z, y, x) in nm checked for its units and axis order against the image's ``shape``.

    EM pixels are square, so y ≠ x with z equal to one of them means the
    sizes came in X,Y,Z order (``4.6,4.6,50`` for 50 nm sections of 4.6 nm
    pixels); values under 0.1 or over 10,000 are not nanometres.
    """
    resolution = check_resolution(resolution)
    low, high = RESOLUTION_NM
    for axis, value in zip("zyx", resolution):
        if not low <= value <= high:
            unit = "micrometres or metres" if value < low else "picometres, or a typo"
            raise ProofQuestError(f"resolution {axis} = {value:g}: voxel sizes are in nanometres (EM voxels are "
                                  f"{low:g}..{high:g} nm); this looks like {unit}")
    z, y, x = resolution
    if not math.isclose(y, x, rel_tol=0.01) and (math.isclose(z, y, rel_tol=0.01) or math.isclose(z, x, rel_tol=0.01)):
        flipped = resolution[::-1]
        hint = f"; for X,Y,Z = {','.join(f'{v:g}' for v in resolution)} give {','.join(f'{v:g}' for v in flipped)}" \
            if math.isclose(flipped[1], flipped[2], rel_tol=0.01) else ""
        raise ProofQuestError(f"resolution {z:g},{y:g},{x:g} has y ≠ x but z equal to one of them: EM pixels are "
                              f"square, so this looks like X,Y,Z order. The resolution is Z,Y,X in nm (z the "
                              f"{shape[0]} sections of the image's {tuple(shape)}){hint}")
    return resolution


def layer_dtype(layer: str, dtype) -> np.dtype:
    """The dtype ``layer`` stores for data of ``dtype``, or a ProofQuestError saying how to convert.

    Label layers keep uint32 unless the data are 64-bit; intensity layers are uint8.
    """
    if layer not in LAYERS:
        raise ProofQuestError(f"unknown layer '{layer}'; layers are: {', '.join(LAYERS)}")
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.integer):
        if layer in LABEL_LAYERS:
            raise ProofQuestError(f"layer '{layer}' holds labels, which must be integers, but the data are "
                                  f"{dtype}; convert them to integers first (e.g. astype(np.uint32) after "
                                  "checking they are whole numbers)")
        hint = "probability x 255, rounded" if layer == "boundary" else "intensities rescaled to 0..255"
        raise ProofQuestError(f"layer '{layer}' is stored as uint8 but the data are {dtype}; convert them "
                              f"first ({hint})")
    if layer in INTENSITY_LAYERS:
        return np.dtype(np.uint8)
    return np.dtype(np.uint64 if dtype.itemsize > 4 else np.uint32)


def fit_to_layer(layer: str, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` cast to the layer's ``dtype`` after checking every value fits."""
    layer_dtype(layer, array.dtype)
    if array.size and not np.can_cast(array.dtype, dtype):
        info, low, high = np.iinfo(dtype), array.min(), array.max()
        if low < info.min or high > info.max:
            raise ProofQuestError(f"layer '{layer}' is {dtype} but the data range over {low}..{high}; "
                                  + ("rescale them to 0..255" if dtype == np.uint8 else
                                     "labels must be non-negative ids (renumber them)"))
    return array.astype(dtype, copy=False)


def _json_attrs(attrs: Mapping[str, Any]) -> dict:
    try:
        return json.loads(json.dumps(dict(attrs)))
    except (TypeError, ValueError) as error:
        raise ProofQuestError(f"volume attrs must be JSON values (numbers, strings, lists, dicts): {error}") from error


# --- side arrays ----------------------------------------------------------

def side_names(folder: Path) -> list[str]:
    """The side arrays saved in a volume folder."""
    return sorted(p.stem for p in folder.iterdir() if p.suffix in SIDE_SUFFIXES and not p.name.startswith("."))


def save_side(folder: Path, name: str, data: np.ndarray | Mapping[str, np.ndarray]) -> Path:
    """Save an array as ``NAME.npy`` or a dict of arrays as ``NAME.npz``, replacing any earlier one atomically."""
    check_name(name, "side array")
    suffix = ".npz" if isinstance(data, Mapping) else ".npy"
    target = folder / (name + suffix)
    with atomic_path(target) as temporary:
        with open(temporary, "wb") as file:
            if isinstance(data, Mapping):
                np.savez(file, **{key: np.asarray(value) for key, value in data.items()})
            else:
                np.save(file, np.asarray(data), allow_pickle=False)
    # A side array may change kind (array <-> dict); drop the other file so the name stays unambiguous.
    (folder / (name + {".npz": ".npy", ".npy": ".npz"}[suffix])).unlink(missing_ok=True)
    return target


def load_side(folder: Path, name: str) -> np.ndarray | dict[str, np.ndarray]:
    """Load a side array (``.npy`` → array, ``.npz`` → dict of arrays)."""
    check_name(name, "side array")
    if (folder / (name + ".npy")).exists():
        return np.load(folder / (name + ".npy"), allow_pickle=False)
    if (folder / (name + ".npz")).exists():
        with np.load(folder / (name + ".npz"), allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    raise ProofQuestError(f"no side array '{name}' in {folder}; there are: {', '.join(side_names(folder)) or 'none'}")


# --- volumes ----------------------------------------------------------------

class _LayeredVolume:
    """What a finished volume and one being written share: geometry, layers, reads, side arrays."""

    def __init__(self, path: Path, group: zarr.Group):
        self.path = path
        self._group = group
        meta = group.attrs
        self.shape = check_shape(meta["shape"])
        self.resolution = check_resolution(meta["resolution"])
        self.chunks = check_shape(meta["chunks"], "chunks")
        self.created = str(meta["created"])
        self._present = set(group.array_keys())
        self._arrays: dict[str, zarr.Array] = {}

    @property
    def layers(self) -> tuple[str, ...]:
        """The layers present, in the canonical order."""
        return tuple(layer for layer in LAYERS if layer in self._present)

    def has(self, layer: str) -> bool:
        return layer in self.layers

    def dtype(self, layer: str) -> np.dtype:
        return np.dtype(self._array(layer).dtype)

    def _array(self, layer: str) -> zarr.Array:
        if layer not in self._arrays:
            if not self.has(layer):
                raise ProofQuestError(f"volume '{self.name}' has no layer '{layer}'; it has: "
                                      f"{', '.join(self.layers) or 'none'}")
            self._arrays[layer] = self._group[layer]
        return self._arrays[layer]

    def read(self, layer: str, bbox: BBox | None = None, *, fill: int = 0) -> np.ndarray:
        """Read ``layer`` inside ``bbox`` (the whole volume if None), touching only the chunks it overlaps.

        Parts of ``bbox`` outside the volume come back as ``fill``, so a crop
        centred near an edge keeps its requested shape.
        """
        array = self._array(layer)
        bbox = BBox.from_shape(self.shape) if bbox is None else bbox
        inside = bbox.clip(self.shape)
        try:
            if inside == bbox:
                return array[bbox.slices]
            crop = np.full(bbox.shape, fill, dtype=array.dtype)
            if not inside.empty:
                crop[inside.relative_to(bbox)] = array[inside.slices]
            return crop
        except (RuntimeError, OSError) as error:
            raise ProofQuestError(f"layer '{layer}' of volume '{self.name}' is corrupt near {inside}: {error}; "
                                  "import the volume again") from error

    def save_side(self, name: str, data: np.ndarray | Mapping[str, np.ndarray]) -> Path:
        """Save a small side array (``.npy``) or dict of arrays (``.npz``), atomically."""
        return save_side(self.path, name, data)

    def load_side(self, name: str) -> np.ndarray | dict[str, np.ndarray]:
        return load_side(self.path, name)

    def has_side(self, name: str) -> bool:
        return name in side_names(self.path)

    def label_sizes(self, layer: str = "supervoxels", *, minlength: int = 0) -> np.ndarray:
        """Voxels per label id of ``layer`` (index 0: unlabelled), counted one chunk-deep slab at a time."""
        counts = np.zeros(minlength, dtype=np.int64)
        for slab in BBox.from_shape(self.shape).tiles((self.chunks[0],) + self.shape[1:]):
            part = np.bincount(self.read(layer, slab).ravel().astype(np.intp, copy=False))  # uint64: numpy<2.2.4
            if len(part) > len(counts):
                counts = np.pad(counts, (0, len(part) - len(counts)))
            counts[:len(part)] += part
        return counts


    def label_boxes(self, layer: str = "supervoxels") -> np.ndarray:
        """Bounding box of every label id of ``layer``: row ``id`` is (z0, y0, x0, z1, y1, x1), −1 if absent.

        Found chunk by chunk (``scipy.ndimage.find_objects`` on each chunk's
        labels renumbered densely), so the layer is read once and never whole.
        """
        from scipy import ndimage

        big = np.iinfo(np.int32).max
        low, high = np.full((1, 3), big, np.int32), np.full((1, 3), -1, np.int32)
        for chunk in BBox.from_shape(self.shape).tiles(self.chunks):
            ids, dense = np.unique(self.read(layer, chunk), return_inverse=True)
            found = ndimage.find_objects(dense.reshape(chunk.shape) + 1)
            if int(ids[-1]) >= len(low):
                grow = int(ids[-1]) + 1 - len(low)
                low = np.concatenate([low, np.full((grow, 3), big, np.int32)])
                high = np.concatenate([high, np.full((grow, 3), -1, np.int32)])
            ids = ids.astype(np.intp)
            np.minimum.at(low, ids, np.array([[s.start for s in f] for f in found]) + chunk.start)
            np.maximum.at(high, ids, np.array([[s.stop for s in f] for f in found]) + chunk.start)
        boxes = np.concatenate([low, high], axis=1)
        boxes[high[:, 0] < 0] = -1
        return boxes


class Volume(_LayeredVolume):
    """A finished volume in a :class:`VolumeStore`, opened for reading.

    Metadata updates and side arrays may still be written; each is one atomic
    file replacement. Layers are fixed: a volume with new layers is written with
    ``VolumeStore.create(..., overwrite=True)``, which can read this one meanwhile.
    """

    def __init__(self, path: Path):
        self.name = path.name
        try:
            super().__init__(path, zarr.open_group(path / GROUP, mode="r"))
            self._attrs = dict(self._group.attrs["attrs"])
        except (ValueError, OSError, KeyError, TypeError, ProofQuestError) as error:
            raise ProofQuestError(f"volume '{self.name}' at {path} is corrupt or incomplete ({error}); "
                                  "delete it and import it again") from error

    @property
    def attrs(self) -> dict:
        """Free-form metadata (a copy; change it with :meth:`update_attrs`)."""
        return dict(self._attrs)

    def update_attrs(self, **attrs: Any) -> None:
        """Merge ``attrs`` into the free-form metadata and save them."""
        merged = _json_attrs({**self._attrs, **attrs})
        # zarr's local store replaces zarr.json through a temporary file, so readers never see half of it.
        zarr.open_group(self.path / GROUP, mode="r+").attrs.update({"attrs": merged})
        self._attrs = merged

    def __repr__(self) -> str:
        return f"Volume({self.name!r}, shape={self.shape}, layers={self.layers})"


class VolumeWriter(_LayeredVolume):
    """Writes the layers, side arrays and metadata of a volume being created.

    Obtained from :meth:`VolumeStore.create`; everything goes into a hidden
    folder that becomes the volume only when the ``with`` block succeeds.
    ``attrs`` is a dict of free-form metadata saved at that moment.
    """

    def __init__(self, path: Path, *, name: str, shape, resolution, chunks):
        self.name = name
        self.attrs: dict = {}
        meta = {"name": name, "shape": list(shape), "resolution": list(resolution),
                "chunks": [min(c, n) for c, n in zip(chunks, shape)],
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "attrs": {}}
        path.mkdir(parents=True)
        super().__init__(path, zarr.open_group(path / GROUP, mode="w-", zarr_format=3, attributes=meta))

    def create_layer(self, layer: str, dtype) -> np.dtype:
        """Create an empty (zero) layer for data of ``dtype``; returns the dtype it stores."""
        if self.has(layer):
            raise ProofQuestError(f"layer '{layer}' was already created in volume '{self.name}'")
        stored = layer_dtype(layer, dtype)
        self._group.create_array(layer, shape=self.shape, dtype=stored, chunks=self.chunks, fill_value=0)
        self._present.add(layer)
        return stored

    def write(self, layer: str, bbox: BBox | None, array: np.ndarray) -> None:
        """Write ``array`` into ``layer`` at ``bbox`` (None: the whole volume), creating the layer if needed."""
        array = np.asarray(array)
        if bbox is None and array.shape != self.shape:
            raise ProofQuestError(f"layer '{layer}' has shape {array.shape} but volume '{self.name}' has "
                                  f"shape {self.shape}; all layers must have the volume's shape")
        bbox = BBox.from_shape(self.shape) if bbox is None else bbox
        if array.shape != bbox.shape or bbox.clip(self.shape) != bbox:
            raise ProofQuestError(f"layer '{layer}': data of shape {array.shape} at {bbox} do not fit "
                                  f"volume '{self.name}' of shape {self.shape}")
        if not self.has(layer):
            self.create_layer(layer, array.dtype)
        target = self._array(layer)
        target[bbox.slices] = fit_to_layer(layer, array, target.dtype)

    def _finish(self) -> None:
        self._group.attrs.update({"attrs": _json_attrs(self.attrs)})


class VolumeStore:
    """The volumes in one folder, each in its own sub-folder ``NAME/``.

    Parameters
    ----------
    root : path
        The store folder (typically ``instance/volumes``); made on first create.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def names(self) -> list[str]:
        """The volume names, sorted; half-written (hidden) folders are not volumes."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def exists(self, name: str) -> bool:
        return (self.root / check_name(name)).is_dir()

    def _folder(self, name: str) -> Path:
        if not self.exists(name):
            known = ", ".join(self.names()) or "none yet: import one first"
            raise ProofQuestError(f"no volume '{name}' in {self.root}; known volumes: {known}")
        return self.root / name

    def open(self, name: str) -> Volume:
        """Open a volume for reading."""
        return Volume(self._folder(name))

    @contextmanager
    def create(self, name: str, *, shape: Sequence[int], resolution: Sequence[float],
               chunks: Sequence[int] = DEFAULT_CHUNKS, overwrite: bool = False) -> Iterator[VolumeWriter]:
        """Create a volume atomically; use as ``with store.create(...) as writer:``.

        Parameters
        ----------
        name : str
            Letters, digits, ``-``, ``_``, ``.``.
        shape : 3 ints
            (z, y, x) voxels; every layer has this shape.
        resolution : 3 floats
            (z, y, x) voxel size in nm.
        chunks : 3 ints
            Chunk shape of every layer (capped at the shape).
        overwrite : bool
            Replace an existing volume of that name, but only once the new one
            is complete; otherwise an existing name is an error.

        Yields
        ------
        VolumeWriter
            Writes into a hidden folder in the store; on leaving the block
            without an exception it is renamed to ``NAME``. An exception removes
            it and leaves every existing volume as it was.
        """
        name = check_name(name)
        shape, resolution = check_shape(shape), check_resolution(resolution)
        chunks = check_shape(chunks, "chunks")
        if not overwrite and self.exists(name):
            raise ProofQuestError(f"volume '{name}' already exists; delete it or pass overwrite=True to replace it")
        with atomic_path(self.root / name, overwrite=overwrite) as temporary:
            writer = VolumeWriter(temporary, name=name, shape=shape, resolution=resolution, chunks=chunks)
            yield writer
            writer._finish()

    def delete(self, name: str) -> None:
        """Delete a volume; it disappears from :meth:`names` at once, even while its files are removed."""
        folder = self._folder(name)
        aside = folder.with_name(f".{name}.deleted-{uuid.uuid4().hex[:8]}")
        os.rename(folder, aside)
        remove_path(aside)

    def __repr__(self) -> str:
        return f"VolumeStore({str(self.root)!r})"


def copy_into(writer: VolumeWriter, layer: str, source: SourceArray | np.ndarray, *, dtype=None,
              convert: Callable[[np.ndarray], np.ndarray] | None = None,
              progress: ProgressCallback | None = None) -> None:
    """Copy a lazy source array into a layer, one z-slab of the chunk depth at a time.

    Parameters
    ----------
    writer : VolumeWriter
    layer : str
    source : array-like
        3D, the volume's shape; read slab by slab (see :func:`open_array`).
    dtype : optional
        The data type the layer is created for; by default that of the first
        (converted) slab.
    convert : callable, optional
        Applied to each slab before writing, e.g. probability → uint8.
    progress : callable, optional
        Called as ``progress(done, total)`` in z slices after each slab.
    """
    if tuple(source.shape) != writer.shape:
        raise ProofQuestError(f"layer '{layer}' has shape {tuple(source.shape)} but volume '{writer.name}' has "
                              f"shape {writer.shape}; all layers must have the volume's shape")
    if dtype is not None:
        writer.create_layer(layer, dtype)
    depth, total = writer.chunks[0], writer.shape[0]
    for z in range(0, total, depth):
        slab = BBox((z, 0, 0), (min(z + depth, total),) + writer.shape[1:])
        block = np.asarray(source[slab.slices])
        writer.write(layer, slab, convert(block) if convert else block)
        if progress is not None:
            progress(slab.stop[0], total)
