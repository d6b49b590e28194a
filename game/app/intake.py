"""Volumes in from the admin page: a server-side path or an upload, then segment and detect in the background.

Everything a user can get wrong is refused before any work starts, with a
message and nothing left behind: a path outside the allowed folders (the
``imports`` folder of the instance and ``IMPORT_FOLDERS``), an unreadable,
corrupt or truncated file, layers of different shapes, non-integer labels,
a taken name. An upload (within ``MAX_UPLOAD_MB``, which the web layer
enforces) is read through once while checking, since it is small; a
server-side file is checked at its first and last slice, and anything found
later fails the job, which removes what it made.

The job runs on a thread and reports progress to the ``jobs`` table as
``import:NAME`` (shown on the admin page): import, then supervoxels and the
initial segmentation (agglomeration of the boundary map, or the boundary
network first when the volume has only an image), then the detector's
puzzles. The new volume is not live until an admin says so.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import tifffile

from game.app import pipeline
from game.app import store as st
from game.app.instance import Instance
from game.errors import ProofQuestError
from game.volumes.formats import HDF5_SUFFIXES, TIFF_SUFFIXES, SourceArray, open_array, split_spec
from game.volumes.volume import check_name, check_resolution, check_resolution_order

log = logging.getLogger(__name__)

LAYERS = ("image", "segmentation", "supervoxels", "boundary", "groundtruth")
UPLOAD_SUFFIXES = HDF5_SUFFIXES + TIFF_SUFFIXES + (".npy",)
READ_ERRORS = (OSError, RuntimeError, ValueError, KeyError, EOFError, tifffile.TiffFileError)
_running = threading.Lock()  # one import at a time per process: each reads and writes whole volumes


def allowed_folders(inst: Instance) -> list[Path]:
    """The folders admins may import from by path: ``HOME/imports`` and those of ``IMPORT_FOLDERS``."""
    folders = [inst.home / "imports"] + [Path(p) for p in str(inst.settings["IMPORT_FOLDERS"]).split(":") if p]
    return [p.resolve() for p in folders]


def resolve_server_path(inst: Instance, spec: str) -> str:
    """A ``FILE[:DATASET]`` spec checked to lie inside an allowed folder (links resolved first)."""
    if not isinstance(spec, str) or not spec.strip():
        raise ProofQuestError("give the path of a file on the server")
    folders = allowed_folders(inst)
    spec = spec.strip()
    candidates = [spec] if Path(spec.partition(":")[0]).is_absolute() else [str(f / spec) for f in folders]
    for candidate in candidates:
        try:
            path, dataset = split_spec(candidate)
        except ProofQuestError:
            continue
        real = path.resolve()
        if not any(real == f or f in real.parents for f in folders):
            raise ProofQuestError(f"{spec} is outside the folders volumes may be imported from "
                                  f"({', '.join(map(str, folders))}); move it there or ask the server's admin "
                                  "to add its folder to PROOFQUEST_IMPORT_FOLDERS")
        return str(real) + (f":{dataset}" if dataset else "")
    raise ProofQuestError(f"file not found: {spec} (looked in {', '.join(map(str, folders))})")


def _read_check(source: SourceArray, layer: str, *, whole: bool) -> None:
    """Read the source (every slab, or its first and last slice) so corrupt or truncated files show now."""
    depth = max(1, 2**24 // max(1, int(np.prod(source.shape[1:]))))
    slabs = range(0, source.shape[0], depth) if whole else sorted({0, source.shape[0] - 1})
    try:
        for z in slabs:
            source[z:z + (depth if whole else 1)]
    except (ProofQuestError, *READ_ERRORS) as error:
        raise ProofQuestError(f"the {layer} file {source.source} cannot be read: it may be corrupt or truncated "
                              f"({error})") from error


def check_request(inst: Instance, name: str, specs: dict[str, str | None], resolution, *,
                  read_whole: bool) -> dict:
    """Validate an import before starting it; returns the summary the page shows."""
    name = check_name(name)
    if inst.volumes.exists(name):
        raise ProofQuestError(f"a volume named {name!r} exists; choose another name")
    if not specs.get("image"):
        raise ProofQuestError("an import needs at least the EM image")
    resolution = check_resolution(resolution)
    with contextlib.ExitStack() as stack:
        sources = {}
        for layer in LAYERS:
            if not specs.get(layer):
                sources[layer] = None
                continue
            try:
                sources[layer] = stack.enter_context(open_array(specs[layer]))
            except ProofQuestError as error:
                raise ProofQuestError(f"{layer}: {error}") from error
            except READ_ERRORS as error:
                raise ProofQuestError(f"the {layer} file {specs[layer]} cannot be read: it may be corrupt or "
                                      f"truncated ({error})") from error
        shape = pipeline.check_sources(specs, sources)
        resolution = check_resolution_order(resolution, shape)
        for layer, source in sources.items():
            if source is not None:
                _read_check(source, layer, whole=read_whole)
        truth = pipeline.declare_truth(sources["groundtruth"])
    return {"name": name, "shape": list(shape), "resolution": list(resolution),
            "layers": [layer for layer in LAYERS if specs.get(layer)],
            "truth": None if truth is None else truth.to_dict()}


def save_uploads(inst: Instance, files: dict[str, tuple[str, Callable[[Path], None]]]) -> tuple[Path, dict]:
    """Store uploaded files (layer → (client file name, save function)) in a fresh hidden folder.

    Returns the folder and the layer → path specs; the caller removes the
    folder when the import ends or is refused.
    """
    folder = inst.home / "uploads" / f".upload-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    specs = {}
    try:
        for layer, (filename, save) in files.items():
            suffix = Path(filename or "").suffix.lower()
            if suffix not in UPLOAD_SUFFIXES:
                raise ProofQuestError(f"the {layer} upload {filename!r} is not a volume file: upload "
                                      f"{', '.join(UPLOAD_SUFFIXES)} (a zarr store or a folder of slices can be "
                                      "imported by path)")
            path = folder / f"{layer}{suffix}"
            save(path)
            specs[layer] = str(path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, specs


class _JobProgress:
    """``progress(desc) -> bar(done, total)`` for the pipeline, written to the jobs table a few times a second."""

    def __init__(self, inst: Instance, job: str, step: str):
        self.inst, self.job, self.step, self.last = inst, job, step, 0.0

    def __call__(self, desc: str) -> Callable[[int, int], None]:
        def bar(done: int, total: int) -> None:
            now = time.monotonic()
            if done >= total or now - self.last > 0.5:
                self.last = now
                st.set_job(self.inst.store, self.job, "running", done, total, f"{self.step}: {desc}")
        return bar


def job_name(name: str) -> str:
    return f"import:{name}"


def _run(inst: Instance, name: str, specs: dict, resolution, cleanup: Path | None) -> None:
    job = job_name(name)
    made = False
    try:
        step = _JobProgress(inst, job, "copying the layers")
        st.set_job(inst.store, job, "running", 0, 0, step.step)
        st.set_live(inst.store, name, False)
        pipeline.import_volume(inst, name, resolution=resolution, progress=step,
                               **{layer: specs.get(layer) for layer in LAYERS})
        made = True
        volume = inst.volumes.open(name)
        if not volume.has_side("mapping"):
            if volume.has("boundary"):
                pipeline.agglomerate_volume(inst, name, progress=_JobProgress(inst, job, "supervoxels"))
            else:
                pipeline.segment_volume(inst, name, progress=_JobProgress(inst, job, "boundary network"))
        n = inst.pool.prepare_volume(name, progress=_JobProgress(inst, job, "finding suspected errors"))
        inst.supervoxel_sizes(name)
        truth = inst.volumes.open(name).attrs.get("truth")
        said = f"; ground truth read as {truth['kind']}: {truth['reason']}" if truth else ""
        st.set_job(inst.store, job, "done", 1, 1, f"ready: {n} puzzles; make the volume live to play it{said}")
    except Exception as exc:  # the page shows why, and nothing of the half-made volume stays
        log.exception("importing %s failed", name)
        if made:
            with contextlib.suppress(ProofQuestError):
                inst.volumes.delete(name)
        st.forget_volume(inst.store, name)
        inst.forget_volume(name)
        message = str(exc) if isinstance(exc, ProofQuestError) else f"{type(exc).__name__}: {exc}"
        st.set_job(inst.store, job, "failed", message=message)
    finally:
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
        _running.release()


def start_import(inst: Instance, name: str, specs: dict[str, str | None], resolution, *,
                 uploaded: Path | None = None) -> threading.Thread:
    """Check the request, then import, segment and detect on a background thread (returned, started).

    ``uploaded`` is the folder of uploaded files, removed when the job ends
    (or now, when the request is refused).
    """
    try:
        if not _running.acquire(blocking=False):
            raise ProofQuestError("another import is running; wait for it to finish")
        try:
            info = check_request(inst, name, specs, resolution, read_whole=uploaded is not None)
        except BaseException:
            _running.release()
            raise
    except BaseException:
        if uploaded is not None:
            shutil.rmtree(uploaded, ignore_errors=True)
        raise
    st.set_job(inst.store, job_name(info["name"]), "running", 0, 0, "queued")
    thread = threading.Thread(target=_run, args=(inst, info["name"], specs, info["resolution"], uploaded),
                              name=f"import-{info['name']}", daemon=True)
    thread.start()
    return thread


def server_specs(inst: Instance, paths: dict[str, str | None]) -> dict[str, str | None]:
    """Layer → checked server path, for the layers given (an empty request says what is missing)."""
    if not paths.get("image"):
        raise ProofQuestError("an import needs at least the EM image: a file on the server, or upload one")
    unknown = set(paths) - set(LAYERS)
    if unknown:
        raise ProofQuestError(f"unknown layer {sorted(unknown)[0]!r}; layers are {', '.join(LAYERS)}")
    return {layer: resolve_server_path(inst, spec) for layer, spec in paths.items() if spec}
