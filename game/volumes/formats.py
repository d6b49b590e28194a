"""Array file formats: lazy readers for import, chunked writers for export.

Readers turn a ``FILE[:DATASET]`` spec into a :class:`SourceArray` that reads
only what is indexed, so a crop of a large file never loads the whole volume.
Writers take blocks in z-slab order and write them into a temporary path beside
the target, renamed into place only when every voxel has been written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import h5py
import numpy as np
import tifffile
import zarr
from PIL import Image

from game.errors import ProofQuestError
from game.geometry import BBox

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
TIFF_SUFFIXES = (".tif", ".tiff")
SLICE_SUFFIXES = (".png",) + TIFF_SUFFIXES
EXPORT_FORMATS = ("h5", "tif", "npy", "zarr")
SUPPORTED = ".h5/.hdf5/.hdf, .tif/.tiff, .npy, .zarr, or a folder of PNG/TIFF slices"


# --- writing atomically -----------------------------------------------------

def is_url(spec: str | os.PathLike) -> bool:
    """Whether ``spec`` names a store by URL (``s3://…``, ``memory://…``): a scheme at its very start. A
    ``file://`` URL is a local path (:func:`local_path`)."""
    match = re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://", os.fspath(spec))
    return bool(match) and match.group(0).lower() != "file://"


def local_path(spec: str | os.PathLike) -> str:
    """``spec`` without a leading ``file://``."""
    spec = os.fspath(spec)
    return spec[len("file://"):] if spec.lower().startswith("file://") else spec


def replace_path(source: Path, target: Path) -> None:
    """Move ``source`` (file or folder) onto ``target``, replacing what is there.

    A folder cannot be renamed over a non-empty folder, so an existing one is
    first moved aside under a hidden name and removed after the swap.
    """
    if target.is_dir() and not target.is_symlink():
        aside = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(target, aside)
        os.rename(source, target)
        shutil.rmtree(aside)
    else:
        os.replace(source, target)


def remove_path(path: Path) -> None:
    """Remove a file or folder if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_path(target: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``target``; rename it into place on success.

    On an exception the temporary path is removed and ``target`` is untouched.
    The temporary path sits in the same folder so the rename never crosses
    file systems.
    """
    target = Path(target)
    if not overwrite and target.exists():
        raise ProofQuestError(f"{target} already exists; choose another name or allow overwriting")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        yield temporary
        if not overwrite and target.exists():
            raise ProofQuestError(f"{target} appeared while it was being written; nothing was replaced")
        replace_path(temporary, target)
    finally:
        remove_path(temporary)


# --- reading ------------------------------------------------------------------

class SourceArray:
    """A 3D array in a file, read on demand.

    Parameters
    ----------
    data : array-like
        Anything with ``shape``, ``dtype`` and slicing (an h5py dataset, a zarr
        array, a memory map, a stack of slice files).
    source : str
        Where the data come from, for messages.
    attrs : dict, optional
        Metadata stored with the array (HDF5/zarr attributes, TIFF or sidecar JSON).
    closer : callable, optional
        Releases the open file.
    """

    def __init__(self, data: Any, *, source: str, attrs: dict | None = None,
                 closer: Callable[[], None] | None = None):
        self._data = data
        self.source = source
        self.attrs = dict(attrs or {})
        self._closer = closer

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self._data.shape)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self._data.dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        try:
            return np.asarray(self._data[key])
        except (OSError, RuntimeError) as error:
            raise ProofQuestError(f"cannot read {self.source}: the file may be corrupt ({error})") from error

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self[...] if dtype is None else self[...].astype(dtype)

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None

    def __enter__(self) -> "SourceArray":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SourceArray({self.source!r}, shape={self.shape}, dtype={self.dtype})"


def natural_key(name: str) -> list:
    """Sort key that orders ``slice2`` before ``slice10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _index_tuple(key, ndim: int) -> tuple:
    """Expand a basic index (ints, slices, ``...``) to one entry per axis."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        at = next(i for i, k in enumerate(key) if k is Ellipsis)
        key = key[:at] + (slice(None),) * (ndim - len(key) + 1) + key[at + 1:]
    return key + (slice(None),) * (ndim - len(key))


def _slice_header(path: Path) -> tuple:
    """What must agree between slices: the plane shape and the pixel type."""
    if path.suffix.lower() in TIFF_SUFFIXES:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            return tuple(page.shape), str(page.dtype)
    with Image.open(path) as image:
        return (image.height, image.width), image.mode


def _read_slice(path: Path) -> np.ndarray:
    if path.suffix.lower() in TIFF_SUFFIXES:
        return tifffile.imread(path, key=0)
    with Image.open(path) as image:
        return np.asarray(image)


class SliceStack:
    """A folder of 2D slice images seen as one (z, y, x) array; a slice is read when indexed."""

    def __init__(self, files: Sequence[Path]):
        self.files = list(files)
        first = _read_slice(self.files[0])
        if first.ndim != 2:
            raise ProofQuestError(f"slice {self.files[0]} has shape {first.shape}, not a 2D grey image; "
                                  "convert the slices to single-channel images")
        header = _slice_header(self.files[0])
        for path in self.files[1:]:
            other = _slice_header(path)
            if other != header:
                raise ProofQuestError(f"slice {path} has shape/type {other} but {self.files[0].name} has "
                                      f"{header}; all slices must have the same size and pixel type")
        self.shape = (len(self.files),) + first.shape
        self.dtype = first.dtype

    def __getitem__(self, key) -> np.ndarray:
        z, *plane = _index_tuple(key, 3)
        plane = tuple(plane)
        if not isinstance(z, slice):
            return _read_slice(self.files[z])[plane]
        planes = [_read_slice(self.files[i])[plane] for i in range(*z.indices(len(self.files)))]
        if planes:
            return np.stack(planes)
        return np.zeros((0,) + np.empty(self.shape[1:], self.dtype)[plane].shape, self.dtype)


def split_spec(spec: str) -> tuple[Path, str | None]:
    """Split ``FILE[:DATASET]`` at the first colon after which the file exists.

    Trying each colon in turn lets both the file name and the dataset path
    contain colons; a spec whose whole text names a file has no dataset.
    """
    if Path(spec).exists():
        return Path(spec), None
    for match in re.finditer(":", spec):
        head, tail = spec[:match.start()], spec[match.end():]
        if head and Path(head).exists():
            return Path(head), tail.strip("/") or None
    path = spec.partition(":")[0]
    raise ProofQuestError(f"file not found: {path}" + (f" (from '{spec}')" if path != spec else ""))


def _plain(value: Any) -> Any:
    """An HDF5 attribute value as plain Python (for JSON and comparisons)."""
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def _hdf5_datasets(file: h5py.File) -> list[str]:
    names: list[str] = []
    file.visititems(lambda name, node: names.append(name) if isinstance(node, h5py.Dataset) else None)
    return names


def _open_hdf5(path: Path, dataset: str | None) -> SourceArray:
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ProofQuestError(f"cannot read {path} as HDF5: {error}") from error
    names = _hdf5_datasets(file)
    if dataset is None and len(names) == 1:
        dataset = names[0]
    if dataset is None or dataset not in names:
        file.close()
        asked = "no dataset given" if dataset is None else f"no dataset '{dataset}'"
        raise ProofQuestError(f"{path}: {asked}; it holds: {', '.join(names) or 'no datasets'}. "
                              f"Name one as {path}:DATASET")
    data = file[dataset]
    attrs = {key: _plain(value) for key, value in data.attrs.items()}
    return SourceArray(data, source=f"{path}:{dataset}", attrs=attrs, closer=file.close)


def _open_tiff(path: Path) -> SourceArray:
    try:
        tif = tifffile.TiffFile(path)
    except (tifffile.TiffFileError, OSError, ValueError) as error:
        raise ProofQuestError(f"cannot read {path} as TIFF: {error}") from error
    attrs = {k: v for k, v in (tif.shaped_metadata or ({},))[0].items() if k not in ("shape", "axes")}
    series = tif.series[0]
    if series.dataoffset is not None:
        # Uncompressed contiguous pages map straight from disk.
        tif.close()
        return SourceArray(tifffile.memmap(path, mode="r"), source=str(path), attrs=attrs)
    store = series.aszarr()

    def close() -> None:
        store.close()
        tif.close()

    return SourceArray(zarr.open_array(store, mode="r"), source=str(path), attrs=attrs, closer=close)


def _open_npy(path: Path) -> SourceArray:
    try:
        data = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as error:
        raise ProofQuestError(f"cannot read {path} as .npy: {error}") from error
    sidecar = path.with_name(path.name + ".json")
    attrs = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    return SourceArray(data, source=str(path), attrs=attrs)


def _open_zarr(path: Path | str, array_path: str | None) -> SourceArray:
    try:
        node = zarr.open(path, mode="r")
    except (FileNotFoundError, ValueError, KeyError) as error:
        raise ProofQuestError(f"cannot read {path} as zarr: {error}") from error
    if isinstance(node, zarr.Group):
        arrays = sorted(name for name, member in node.members(max_depth=None) if isinstance(member, zarr.Array))
        if array_path is None and len(arrays) == 1:
            array_path = arrays[0]
        if array_path not in arrays:
            asked = "no array given" if array_path is None else f"no array '{array_path}'"
            raise ProofQuestError(f"{path}: {asked}; it holds: {', '.join(arrays) or 'no arrays'}. "
                                  f"Name one as {path}:ARRAY")
        node = node[array_path]
    elif array_path is not None:
        raise ProofQuestError(f"{path} is a single zarr array; drop ':{array_path}'")
    source = str(path) + (f":{array_path}" if array_path else "")
    return SourceArray(node, source=source, attrs=dict(node.attrs))


def _split_url(spec: str) -> tuple[str, str | None]:
    """``URL[:ARRAY]`` of a zarr store as (URL, array path): the URL ends at ``.zarr``."""
    match = re.fullmatch(r"([a-z][a-z0-9+.-]*://.+?\.zarr)/?(?::(.+))?", spec)
    if not match:
        raise ProofQuestError(f"{spec}: a volume given by URL must be a zarr store whose name ends in .zarr "
                              "(with its array after a colon: s3://bucket/volume.zarr:raw)")
    url, array_path = match.groups()
    try:
        import fsspec
        fs, path = fsspec.core.url_to_fs(url)
        found = fs.exists(path)
    except (ImportError, ValueError, OSError) as error:  # an unknown scheme, its package missing, no access
        raise ProofQuestError(f"cannot open {url}: {error}") from error
    if not found:
        raise ProofQuestError(f"not found: {url}")
    return url, array_path and array_path.strip("/")


def _is_zarr(path: Path) -> bool:
    return path.suffix == ".zarr" or any((path / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))


def _open_slices(folder: Path) -> SourceArray:
    files = sorted((p for p in folder.iterdir() if p.suffix.lower() in SLICE_SUFFIXES and not p.name.startswith(".")),
                   key=lambda p: natural_key(p.name))
    if not files:
        raise ProofQuestError(f"{folder} holds no PNG or TIFF slices; give a folder of slices or a volume file "
                              f"({SUPPORTED})")
    try:
        return SourceArray(SliceStack(files), source=str(folder))
    except (OSError, tifffile.TiffFileError) as error:
        raise ProofQuestError(f"cannot read the slices in {folder}: {error}") from error


def _open_any(path: Path, dataset: str | None) -> SourceArray:
    suffix = path.suffix.lower()
    if path.is_dir():
        return _open_zarr(path, dataset) if _is_zarr(path) else _open_slices(path)
    if dataset is not None and suffix not in HDF5_SUFFIXES:
        raise ProofQuestError(f"{path} is not HDF5 or zarr, so ':{dataset}' means nothing; drop it")
    if suffix in HDF5_SUFFIXES:
        return _open_hdf5(path, dataset)
    if suffix in TIFF_SUFFIXES:
        return _open_tiff(path)
    if suffix == ".npy":
        return _open_npy(path)
    if suffix in (".png", ".jpg", ".jpeg"):
        raise ProofQuestError(f"{path} is a single 2D image; a volume needs z slices: give the folder of slices")
    raise ProofQuestError(f"unsupported format '{suffix or path.name}' for {path}; use {SUPPORTED}")


def open_array(spec: str | os.PathLike) -> SourceArray:
    """Open a 3D (z, y, x) array from a file without loading it.

    Parameters
    ----------
    spec : str or path
        ``FILE[:DATASET]``: an HDF5 file (dataset path after the colon, optional
        when the file holds one dataset), a multi-page TIFF, a folder of PNG/TIFF
        slices (sorted naturally by name), a ``.npy`` file, or a zarr array or
        group (array path after the colon), also in a store fsspec opens by URL
        (``s3://bucket/volume.zarr:raw``, with the package of its scheme
        installed).

    Returns
    -------
    SourceArray
        Lazy: indexing reads only the chunks, pages or slices it needs.
    """
    spec = os.fspath(spec)
    if is_url(spec):
        array = _open_zarr(*_split_url(spec))
    else:
        path, dataset = split_spec(local_path(spec))
        array = _open_any(path, dataset)
    if array.ndim != 3:
        array.close()
        if array.ndim == 2:
            raise ProofQuestError(f"{array.source} is a single 2D image of shape {array.shape}; a volume needs "
                                  "z slices: give a multi-page TIFF, a folder of slices or a 3D dataset")
        raise ProofQuestError(f"{array.source} has shape {array.shape}; a volume must be 3D (z, y, x)")
    return array


# --- writing ------------------------------------------------------------------

def _checked_blocks(blocks: Iterable[tuple[BBox, np.ndarray]], shape: tuple[int, int, int],
                    dtype: np.dtype) -> Iterator[tuple[BBox, np.ndarray]]:
    """Pass blocks through after checking they fit; refuse to finish an incomplete export."""
    whole, written = BBox.from_shape(shape), 0
    for bbox, block in blocks:
        block = np.asarray(block)
        if block.shape != bbox.shape or bbox.clip(shape) != bbox:
            raise ProofQuestError(f"export block of shape {block.shape} at {bbox} does not fit a volume of {shape}")
        written += bbox.size
        yield bbox, block.astype(dtype, copy=False)
    if written < whole.size:
        raise ProofQuestError(f"export incomplete: {written} of {whole.size} voxels written; nothing was saved")


def _planes(blocks: Iterator[tuple[BBox, np.ndarray]], shape: tuple[int, int, int],
            dtype: np.dtype) -> Iterator[np.ndarray]:
    """The volume's z-planes in order, from blocks that arrive one z-slab after another.

    TIFF pages and the rows of a ``.npy`` are written one after another, so
    the blocks of one slab must all arrive before any block of the next. A
    block that is a whole slab is passed through; tiles are assembled into
    one slab buffer first.
    """
    next_z, slab_box, slab, filled = 0, None, None, 0
    for bbox, block in blocks:
        if slab_box is None:
            slab_box = BBox((next_z, 0, 0), (bbox.stop[0],) + tuple(shape[1:]))
            if bbox == slab_box:
                yield from block
                next_z, slab_box = bbox.stop[0], None
                continue
            slab, filled = np.zeros(slab_box.shape, dtype), 0
        if (bbox.start[0], bbox.stop[0]) != (slab_box.start[0], slab_box.stop[0]):
            raise ProofQuestError(f"TIFF and .npy exports need the blocks in z-slab order: {bbox} arrived while "
                                  f"the slab from z={slab_box.start[0]} was incomplete")
        slab[bbox.relative_to(slab_box)] = block
        filled += bbox.size
        if filled == slab_box.size:
            yield from slab
            next_z, slab_box, slab = slab_box.stop[0], None, None


# Every writer stores ``attrs`` only after the last block: the blocks' producer may still be adding to it
# (a checksum of the data is known only at the end).

def _write_h5(path: Path, shape, dtype, blocks, attrs: dict, chunks, dataset: str) -> None:
    with h5py.File(path, "w") as file:
        data = file.create_dataset(dataset, shape=shape, dtype=dtype, chunks=chunks, compression="gzip")
        for bbox, block in blocks:
            data[bbox.slices] = block
        for key, value in attrs.items():
            # HDF5 attributes hold scalars, strings and flat lists; anything nested goes in as JSON.
            data.attrs[key] = json.dumps(value) if isinstance(value, dict) else value


def _write_tif(path: Path, shape, dtype, blocks, attrs: dict) -> None:
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with tifffile.TiffWriter(path, bigtiff=nbytes > 2**31) as tif:
        tif.write(_planes(blocks, shape, dtype), shape=shape, dtype=dtype, photometric="minisblack",
                  metadata={**attrs, "axes": "ZYX"})
        # the description was written with the first page; rewrite it with what the blocks added
        tif.overwrite_description(json.dumps({**attrs, "shape": list(shape), "axes": "ZYX"}))


def _write_npy(path: Path, shape, dtype, blocks) -> None:
    # written plane after plane (not through a memory map, whose pages would all stay resident)
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                    "fortran_order": False, "shape": tuple(shape)})
        for plane in _planes(blocks, shape, dtype):
            file.write(np.ascontiguousarray(plane).data)


def _write_zarr(path: Path, shape, dtype, blocks, attrs: dict, chunks) -> None:
    data = zarr.create_array(store=path, shape=shape, dtype=dtype, chunks=chunks, fill_value=0)
    for bbox, block in blocks:
        data[bbox.slices] = block
    data.attrs.update(attrs)


def export_format(path: str | os.PathLike, fmt: str | None) -> str:
    """The export format ``fmt``, or the one the suffix of ``path`` names; an error for any other."""
    path = Path(path)
    fmt = fmt or {".h5": "h5", ".hdf5": "h5", ".hdf": "h5", ".tif": "tif", ".tiff": "tif",
                  ".npy": "npy", ".zarr": "zarr"}.get(path.suffix.lower())
    if fmt not in EXPORT_FORMATS:
        raise ProofQuestError(f"cannot export to '{fmt or path.suffix}'; choose one of {', '.join(EXPORT_FORMATS)}")
    return fmt


def export_array(path: str | os.PathLike, fmt: str | None, shape: Sequence[int], dtype,
                 blocks: Iterable[tuple[BBox, np.ndarray]], *, attrs: dict | None = None,
                 chunks: Sequence[int] = (32, 128, 128), dataset: str = "stack",
                 overwrite: bool = False) -> Path:
    """Write a volume to a file block by block, atomically.

    Parameters
    ----------
    path : path
        The file (or ``.zarr`` folder) to write.
    fmt : {'h5', 'tif', 'npy', 'zarr'} or None
        The format; None takes it from the suffix of ``path``.
    shape, dtype
        Of the whole array.
    blocks : iterable of (BBox, ndarray)
        Covering the whole array, in z-slab order (needed for TIFF and .npy).
    attrs : dict, optional
        JSON-able metadata: HDF5 or zarr attributes, the TIFF's ImageDescription
        JSON, or a sidecar ``PATH.json`` beside a ``.npy``. Stored after the
        last block, so ``blocks`` may add to it (a checksum) as it runs out.
    chunks : 3 ints
        Chunking for HDF5 and zarr (capped at the shape).
    dataset : str
        The HDF5 dataset name.
    overwrite : bool
        Replace an existing file; otherwise that is an error.

    Returns
    -------
    Path
        The written path. Until every block is written the data live under a
        hidden temporary name; a failure removes it and leaves ``path`` as it was.
    """
    path = Path(path)
    fmt = export_format(path, fmt)
    shape, dtype, attrs = tuple(int(n) for n in shape), np.dtype(dtype), attrs if attrs is not None else {}
    chunks = tuple(min(c, n) for c, n in zip(chunks, shape))
    checked = _checked_blocks(blocks, shape, dtype)
    with atomic_path(path, overwrite=overwrite) as temporary:
        if fmt == "h5":
            _write_h5(temporary, shape, dtype, checked, attrs, chunks, dataset)
        elif fmt == "tif":
            _write_tif(temporary, shape, dtype, checked, attrs)
        elif fmt == "zarr":
            _write_zarr(temporary, shape, dtype, checked, attrs, chunks)
        else:
            _write_npy(temporary, shape, dtype, checked)
            # .npy has no room for metadata, so it goes in a sidecar written once the data are complete.
            with atomic_path(path.with_name(path.name + ".json")) as sidecar:
                sidecar.write_text(json.dumps(attrs))
    return path
