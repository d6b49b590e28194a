"""Exports: the consensus labels, the tables behind them, and the crowd's answers.

Labels are ``mapping[supervoxels]`` for the mapping of the current log or of
the log cut after ``at`` edits, computed one z-slab at a time (never the whole
volume). Each export carries its metadata: volume, resolution, edit count, time
and a SHA-256 checksum of the labels in C order (z, y, x), little-endian, so
``hashlib.sha256(np.ascontiguousarray(labels, '<u4')).hexdigest()`` checks a
file read back.

Files (the command line) go through :func:`game.volumes.formats.export_array`.
Downloads stream: ``.npy`` (zipped with its JSON sidecar) and zarr (a zip of
the store, each chunk sent as soon as its slab is written) start at once;
HDF5 and TIFF need seeking, so they are written to a temporary file slab by
slab and streamed from it. Votes, edits and puzzles come out as CSV or JSON
lines, read lazily from the store.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import io
import json
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import zarr

from game.app import store as st
from game.app.instance import Instance
from game.app.pipeline import no_segmentation
from game.errors import ProofQuestError
from game.geometry import BBox
from game.segmentation.agglomeration import Agglomeration, Edit
from game.volumes.formats import EXPORT_FORMATS, atomic_path, export_array, export_format, is_url, local_path

WHAT = ("labels", "votes", "edits", "puzzles", "answers")
ROW_FORMATS = ("csv", "jsonl")
# A slab of labels holds at most this many voxels (32 MiB of uint32; 8 planes of 1024 x 1024). On a
# 256 x 1024 x 1024 volume, slabs of 2**25 voxels took 5x the memory and up to twice the time
# (bench/bench_export.py --slab-voxels).
SLAB_VOXELS = 2**23
# Columns the store keeps as JSON text: lists and objects in JSON lines, the JSON text itself in CSV.
JSON_COLUMNS = ("supervoxels", "provenance", "anchors", "segments", "location")
STREAM_PIECE = 1 << 20


# ----------------------------------------------------------------------------- the labels

def mapping_at(inst: Instance, name: str, at: int | None = None) -> tuple[np.ndarray, int]:
    """The supervoxel → segment mapping after the first ``at`` edits of the log (None: all); and that count."""
    if at is None:
        agg = inst.agglomeration(name)
        return np.array(agg.mapping), len(agg.edits)
    rows = st.edits(inst.store, name)
    if isinstance(at, bool) or not isinstance(at, (int, np.integer)) or not 0 <= at <= len(rows):
        count = f"{len(rows)} edit{'' if len(rows) == 1 else 's'}"
        raise ProofQuestError(f"--at {at}: the log of {name!r} has {count}; give 0 (the automatic "
                              f"segmentation) to {len(rows)} (now)")
    initial = inst.volumes.open(name).load_side("mapping")
    agg = Agglomeration.replay(initial, (Edit.from_dict(row["edit"]) for row in rows[:at]))
    return np.array(agg.mapping), int(at)


def label_dtype(mapping: np.ndarray) -> np.dtype:
    """uint32 unless a segment id needs 64 bits; little-endian, as the checksum is defined."""
    return np.dtype("<u4" if int(mapping.max(initial=0)) < 2**32 else "<u8")


def label_checksum(labels: np.ndarray, dtype=None) -> str:
    """The ``sha256:…`` checksum the exports carry, of a label array read back whole."""
    dtype = np.dtype(dtype or labels.dtype).newbyteorder("<")
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(labels, dtype=dtype)).hexdigest()


@dataclass
class LabelExport:
    """What one labels export writes: geometry, dtype, metadata, and the slabs that fill it.

    Iterating :meth:`slabs` reads the supervoxels one z-slab at a time and,
    once every slab has been produced, adds ``checksum`` to :attr:`attrs`.
    """

    volume: object
    mapping: np.ndarray
    attrs: dict
    dtype: np.dtype
    slab_voxels: int

    def __post_init__(self):
        # in the labels' own type: a slab is then looked up once, with no wider temporary to cast down
        self.mapping = np.asarray(self.mapping).astype(self.dtype, copy=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.volume.shape)

    @property
    def slab_depth(self) -> int:
        plane = self.shape[1] * self.shape[2]
        depth = min(self.volume.chunks[0], max(1, self.slab_voxels // plane))
        return depth

    @property
    def file_chunks(self) -> tuple[int, int, int]:
        """Chunks of an HDF5 or zarr export: one slab deep, so every slab fills whole chunks (no rewrites)."""
        return (self.slab_depth,) + tuple(self.volume.chunks[1:])

    def slab_boxes(self) -> list[BBox]:
        return list(BBox.from_shape(self.shape).tiles((self.slab_depth,) + self.shape[1:]))

    def slabs(self, progress: Callable[[int, int], None] | None = None) -> Iterator[tuple[BBox, np.ndarray]]:
        digest = hashlib.sha256()
        boxes = self.slab_boxes()
        for i, box in enumerate(boxes, 1):
            labels = np.take(self.mapping, self.volume.read("supervoxels", box))
            digest.update(labels)  # a full-width z-slab is a contiguous run of the C-order volume
            yield box, labels
            if progress is not None:
                progress(i, len(boxes))
        self.attrs["checksum"] = "sha256:" + digest.hexdigest()


def label_export(inst: Instance, name: str, *, at: int | None = None,
                 slab_voxels: int | None = None) -> LabelExport:
    """Prepare the export of ``name``'s labels (now, or after ``at`` edits), slabs of at most
    ``slab_voxels`` (default :data:`SLAB_VOXELS`)."""
    volume = inst.volumes.open(name)
    if not volume.has("supervoxels") or not volume.has_side("mapping"):
        raise no_segmentation(volume)
    mapping, edits = mapping_at(inst, name, at)
    attrs = {"volume": name, "resolution": list(volume.resolution), "axes": "zyx", "edits": edits,
             "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return LabelExport(volume, mapping, attrs, label_dtype(mapping), slab_voxels or SLAB_VOXELS)


def export_labels(inst: Instance, name: str, *, fmt: str | None, out: str, at: int | None = None,
                  progress: Callable[[int, int], None] | None = None, overwrite: bool = False,
                  scheduler: str | None = None) -> str | Path:
    """Write the labels to a file (or ``.zarr`` folder or store URL) slab by slab, with their metadata.

    A zarr export is written by tasks of dask's ``scheduler`` (:func:`export_zarr`); HDF5, TIFF and
    ``.npy`` cannot be written from several processes at once, so they are streamed here, slab by slab, to
    a local file only.
    """
    fmt = export_format(out, fmt)
    if fmt != "zarr" and is_url(out):
        raise ProofQuestError(f"only zarr can be written to a URL ({out}); write {fmt} to a local path")
    job = label_export(inst, name, at=at)
    if fmt == "zarr":
        return export_zarr(job, out, progress=progress, overwrite=overwrite, scheduler=scheduler)
    return export_array(local_path(out), fmt, job.shape, job.dtype, job.slabs(progress), attrs=job.attrs,
                        chunks=job.file_chunks, overwrite=overwrite)


def export_zarr(job: LabelExport, out: str | Path, *, progress: Callable[[int, int], None] | None = None,
                overwrite: bool = False, scheduler: str | None = None) -> str | Path:
    """The labels as a zarr array written by tasks of dask (:func:`game.blockwise.relabel_block`), one per
    slab; equal to :func:`game.volumes.formats.export_array` of :meth:`LabelExport.slabs`.

    The workers read the supervoxels and write the slabs of the new array
    themselves (``out`` on a disk they share, or a URL of a store fsspec opens
    such as ``s3://bucket/labels.zarr``; the mapping goes to each worker
    once). The checksum is a hash of the labels in order, which cannot be
    computed in pieces: this process reads the written array back slab by
    slab for it, and adds the metadata last. A path is written under a
    temporary name and renamed into place when complete (:func:`_zarr_target`
    says what stands for that at a URL).
    """
    from game import blockwise
    chunks = tuple(min(c, n) for c, n in zip(job.file_chunks, job.shape))
    with _zarr_target(out, overwrite=overwrite) as temporary:
        data = zarr.create_array(store=str(temporary), shape=job.shape, dtype=job.dtype, chunks=chunks,
                                 fill_value=0)
        boxes, mapping = job.slab_boxes(), blockwise.Shared(job.mapping)
        source = blockwise.array_url(job.volume, "supervoxels")
        blockwise.compute([functools.partial(blockwise.relabel_block, source, str(temporary), box, mapping)
                           for box in boxes], scheduler=scheduler, progress=progress)
        digest = hashlib.sha256()
        for box in boxes:
            digest.update(np.ascontiguousarray(data[box.slices]))
        data.attrs.update({**job.attrs, "checksum": "sha256:" + digest.hexdigest()})
    job.attrs["checksum"] = "sha256:" + digest.hexdigest()
    return out if is_url(out) else Path(local_path(out))


@contextlib.contextmanager
def _zarr_target(out: str | Path, *, overwrite: bool) -> Iterator[str | Path]:
    """Where :func:`export_zarr` writes: a temporary path renamed into place (:func:`atomic_path`) for a
    local path; the URL itself for a store, which has no rename.

    At a URL an existing store is refused unless ``overwrite`` (then removed first), and a store left by a
    failed export is removed. Readers tell a complete export by its ``checksum`` attribute, which is
    written last.
    """
    if not is_url(out):
        with atomic_path(Path(local_path(out)), overwrite=overwrite) as temporary:
            yield temporary
        return
    if not str(out).rstrip("/").endswith(".zarr"):
        raise ProofQuestError(f"{out}: a zarr store named by URL ends in .zarr (as an import by URL expects)")
    try:
        import fsspec
        fs, path = fsspec.core.url_to_fs(str(out))
        if fs.exists(path):
            if not overwrite:
                raise ProofQuestError(f"{out} already exists; choose another name or allow overwriting")
            fs.rm(path, recursive=True)
    except (ImportError, ValueError, OSError) as exc:  # an unknown scheme, its package missing, no access
        raise ProofQuestError(f"cannot write to {out}: {exc}") from exc
    try:
        yield str(out)
    except BaseException:
        if fs.exists(path):
            fs.rm(path, recursive=True)
        raise


# ----------------------------------------------------------------------------- labels as a download

class _Pipe(io.RawIOBase):
    """A write-only stream whose bytes a generator takes out as they come (zipfile writes into it)."""

    def __init__(self):
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


@dataclass(frozen=True)
class Download:
    """A file to send: its name, media type and the generator of its bytes."""

    filename: str
    mimetype: str
    chunks: Iterator[bytes]


def _npy_zip(job: LabelExport, stem: str) -> Iterator[bytes]:
    """``STEM.npy`` and its sidecar ``STEM.npy.json`` in a zip, the array streamed slab by slab."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open(f"{stem}.npy", "w", force_zip64=True) as member:
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": np.lib.format.dtype_to_descr(job.dtype),
                                                          "fortran_order": False, "shape": job.shape})
            member.write(header.getvalue())
            yield pipe.take()  # the download starts now, before the first slab is read
            for _, labels in job.slabs():
                member.write(labels.data)
                yield pipe.take()
        archive.writestr(f"{stem}.npy.json", json.dumps(job.attrs, indent=1))
    yield pipe.take()


def _zarr_zip(job: LabelExport, stem: str, scratch: Path) -> Iterator[bytes]:
    """A zarr store in a zip: each chunk file goes out once the slabs covering it are written."""
    pipe = _Pipe()
    root = scratch / f"{stem}.zarr"
    chunks = tuple(min(c, n) for c, n in zip(job.file_chunks, job.shape))
    data = zarr.create_array(store=root, shape=job.shape, dtype=job.dtype, chunks=chunks, fill_value=0)
    sent_rows = 0
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED) as archive:
        for box, labels in job.slabs():
            data[box.slices] = labels
            done_rows = box.stop[0] // chunks[0] if box.stop[0] < job.shape[0] else -(-job.shape[0] // chunks[0])
            for row in range(sent_rows, done_rows):
                folder = root / "c" / str(row)
                for path in sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else ():
                    archive.write(path, path.relative_to(scratch).as_posix())
                    path.unlink()
                yield pipe.take()
            sent_rows = done_rows
        data.attrs.update(job.attrs)
        archive.write(root / "zarr.json", f"{stem}.zarr/zarr.json")
    yield pipe.take()


def _file_then_stream(job: LabelExport, fmt: str, path: Path) -> Iterator[bytes]:
    """Formats that seek while writing (HDF5, TIFF): the whole file first, then its bytes."""
    export_array(path, fmt, job.shape, job.dtype, job.slabs(), attrs=job.attrs, chunks=job.file_chunks)
    with open(path, "rb") as file:
        while piece := file.read(STREAM_PIECE):
            yield piece


def _in_scratch(make: Callable[[Path], Iterator[bytes]], folder: Path) -> Iterator[bytes]:
    """Run a generator in its own temporary folder, removed when it ends or the client goes away."""
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    try:
        yield from make(scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def labels_download(inst: Instance, name: str, fmt: str, *, at: int | None = None) -> Download:
    """The labels as a streamed download: ``.npy`` and zarr inside a zip, HDF5 and TIFF as files."""
    if fmt not in EXPORT_FORMATS:
        raise ProofQuestError(f"cannot export labels as {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    job = label_export(inst, name, at=at)
    stem = f"{name}-labels-{job.attrs['edits']}edits"
    folder = inst.home / "exports"
    folder.mkdir(exist_ok=True)
    if fmt == "npy":
        return Download(f"{stem}.npy.zip", "application/zip", _npy_zip(job, stem))
    if fmt == "zarr":
        return Download(f"{stem}.zarr.zip", "application/zip",
                        _in_scratch(lambda scratch: _zarr_zip(job, stem, scratch), folder))
    suffix = {"h5": ".h5", "tif": ".tif"}[fmt]
    mimetype = {"h5": "application/x-hdf5", "tif": "image/tiff"}[fmt]
    return Download(stem + suffix, mimetype,
                    _in_scratch(lambda scratch: _file_then_stream(job, fmt, scratch / (stem + suffix)), folder))


# ----------------------------------------------------------------------------- rows: votes, edits, puzzles

def _json_row(row: dict) -> dict:
    return {k: json.loads(v) if k in JSON_COLUMNS and isinstance(v, str) else v for k, v in row.items()}


def row_lines(rows: Iterable[dict], fmt: str) -> Iterator[bytes]:
    """Rows as CSV (a header from the first row's columns) or JSON lines, a piece at a time."""
    if fmt not in ROW_FORMATS:
        raise ProofQuestError(f"cannot write rows as {fmt!r}; choose one of {', '.join(ROW_FORMATS)}")
    if fmt == "jsonl":
        for row in rows:
            yield (json.dumps(_json_row(row)) + "\n").encode()
        return
    buffer = io.StringIO()
    writer = None
    for i, row in enumerate(rows):
        if writer is None:
            writer = csv.DictWriter(buffer, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow(row)
        if i % 500 == 499:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def answer_rows(inst: Instance, name: str) -> Iterator[dict]:
    """The crowd's decided puzzles in the format ``retrain-detector`` reads: the candidate plus ``answer``."""
    for p in st.puzzles(inst.store, volume=name, tutorial=None):
        if p["state"] == "retired" and p["decision"] is not None:
            yield {**p["detector"], "kind": p["kind"], "score": p["score"], "location": p["location"],
                   "segments": p["segments"], "anchors": p["anchors"], "supervoxels": p["supervoxels"],
                   "answer": bool(p["decision"]), "puzzle": p["id"], "votes": p["n_votes"],
                   "confidence": p["confidence"]}


def rows_of(inst: Instance, name: str, what: str) -> Iterator[dict]:
    """The rows of a table export of one volume."""
    inst.volumes.open(name)  # a clear error for an unknown volume
    if what == "answers":
        return answer_rows(inst, name)
    return st.export_rows(inst.store, what, name)


def rows_download(inst: Instance, name: str, what: str, fmt: str) -> Download:
    if fmt not in ROW_FORMATS:  # here, not only in the stream: there it came after the response had begun (a 500)
        raise ProofQuestError(f"cannot write rows as {str(fmt)[:20]!r}; choose one of {', '.join(ROW_FORMATS)}")
    if what == "answers" and fmt != "jsonl":
        raise ProofQuestError("answers are written as JSON lines (what retrain-detector reads): use jsonl")
    chunks = row_lines(rows_of(inst, name, what), fmt)
    return Download(f"{name}-{what}.{fmt}", "text/csv" if fmt == "csv" else "application/x-ndjson", chunks)


def export_rows_file(inst: Instance, name: str, what: str, fmt: str, out: str, *, overwrite: bool = True) -> Path:
    """Write a table export to a file, atomically."""
    path = Path(out)
    download = rows_download(inst, name, what, fmt)
    with atomic_path(path, overwrite=overwrite) as temporary:
        with open(temporary, "wb") as file:
            for piece in download.chunks:
                file.write(piece)
    return path


def export(inst: Instance, name: str, *, what: str, fmt: str | None, out: str, at: int | None = None,
           progress: Callable[[int, int], None] | None = None, scheduler: str | None = None) -> str | Path:
    """The command line's ``export``: labels to an array file, the other tables to CSV or JSON lines."""
    if what not in WHAT:
        raise ProofQuestError(f"--what {what!r} is not known; choose one of {', '.join(WHAT)}")
    if what == "labels":
        return export_labels(inst, name, fmt=fmt, out=out, at=at, progress=progress, scheduler=scheduler)
    if at is not None:
        raise ProofQuestError("--at applies to labels only (the tables hold every edit with its time)")
    if is_url(out):
        raise ProofQuestError(f"tables are written to a local file, not to a URL ({out})")
    fmt = fmt or ("jsonl" if what == "answers" or str(out).endswith((".jsonl", ".json")) else "csv")
    return export_rows_file(inst, name, what, fmt, local_path(out))
