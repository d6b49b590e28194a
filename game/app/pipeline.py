"""The steps the command line and the first start run on whole volumes.

Demo generation, import, supervoxels and agglomeration, evaluation, export.
Each step reads and writes the volume store chunk by chunk where it can, and
replaces a volume only atomically (``VolumeStore.create(..., overwrite=True)``
builds the new one beside the old and swaps it in when complete).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import fastremap
import numpy as np

from game import blockwise
from game.app import store as st
from game.app.instance import Instance
from game.errors import ProofQuestError
from game.evaluation import metrics, quality
from game.geometry import BBox
from game.progress import ProgressFactory
from game.segmentation import filters
from game.segmentation.merging import agglomerate, fold_fragments, section_linkage
from game.segmentation.rag import RAG, build_rag_blockwise
from game.segmentation.watershed import oversegment_segments
from game.volumes import synthetic
from game.volumes.annotations import Annotation, classify_annotation
from game.volumes.intensity import uint8_converter
from game.volumes.volume import (
    LABEL_LAYERS,
    Volume,
    check_resolution,
    check_resolution_order,
    copy_into,
    open_array,
)

SIDES = ("mapping", "rag", "sv_gt_table")


def _bar(progress: ProgressFactory | None, desc: str) -> Callable[[int, int], None]:
    bar = progress(desc) if progress else None
    return bar if bar is not None else (lambda done, total: None)


# ----------------------------------------------------------------------------- segmentation from boundaries

# A watershed block of 2**26 voxels (a 64×1024×1024 slab) needs about 3.5 GiB of working memory, 56 bytes a voxel
# (bench/bench_big_volume.py: one slab at a time peaked at 3.76 GiB, two at once at 6.99 GiB); local workers
# flood only as many slabs at once as free memory holds.
WATERSHED_BLOCK_VOXELS = 2**26
WATERSHED_BYTES_PER_VOXEL = 56
ANISOTROPY_CHOICES = ("auto", "on", "off")


def per_section(resolution, ratio: float, choice: str = "auto") -> bool:
    """Whether a volume of this resolution is segmented as serial sections (``choice`` 'auto', 'on' or 'off').

    'auto': when z is at least ``ratio`` times coarser than the finer in-plane axis (setting ANISOTROPY_RATIO).
    """
    if choice not in ANISOTROPY_CHOICES:
        raise ProofQuestError(f"--anisotropic {choice!r}: use one of {', '.join(ANISOTROPY_CHOICES)}")
    if choice != "auto":
        return choice == "on"
    return float(resolution[0]) >= float(ratio) * min(float(r) for r in resolution[1:])


def _watershed_into(source, writer, resolution, *, sections: bool = False, progress: ProgressFactory | None = None,
                    block_voxels: int | None = None, scheduler: str | None = None) -> int:
    """Supervoxels by watershed of ``source``'s boundary layer, written into ``writer``; returns their number.

    With ``sections`` each section is flooded on its own
    (:func:`game.segmentation.watershed.watershed_sections`), a chunk deep
    at a time. Otherwise the volume is flooded in 3D, in z-slabs of at most
    ``block_voxels`` voxels (default ``WATERSHED_BLOCK_VOXELS``; whole
    z-chunks when a chunk fits; in one piece when the volume fits), so a
    volume larger than memory works. The slabs are tasks of dask
    (:mod:`game.blockwise`, ``scheduler``), numbered within each slab and then
    shifted past the slabs before it. A 3D supervoxel never crosses a slab
    face: a cell cut there becomes two supervoxels touching across low
    boundary, which the agglomeration joins like any other pair.
    """
    shape, chunk = writer.shape, writer.chunks[0]
    depth = max(1, (block_voxels or WATERSHED_BLOCK_VOXELS) // (shape[1] * shape[2]))
    depth = depth // chunk * chunk if depth >= chunk else depth
    if sections:
        depth = chunk
    sampling = tuple(r / min(resolution) for r in resolution)
    slabs = list(BBox.from_shape(shape).tiles((depth,) + tuple(shape[1:])))
    if not writer.has("supervoxels"):
        writer.create_layer("supervoxels", np.uint32)
    boundary, labels = blockwise.array_url(source, "boundary"), blockwise.array_url(writer, "supervoxels")
    # slabs thinner than a chunk share it: one task does them in turn (tasks never write the same chunk)
    groups = [list(g) for _, g in itertools.groupby(slabs, key=lambda slab: slab.start[0] // chunk)]
    counts = [n for group in blockwise.compute(
        [functools.partial(blockwise.watershed_slabs, boundary, labels, group, sampling, sections) for group in groups],
        scheduler=scheduler, progress=_bar(progress, "watershed, section by section" if sections else "watershed"),
        task_bytes=depth * shape[1] * shape[2] * WATERSHED_BYTES_PER_VOXEL)
        for n in group]
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    if offsets[-1] >= 2**32:
        raise ProofQuestError(f"more than {2**32 - 1} supervoxels: the boundary map is too fragmented to "
                              "store (smooth it, or raise the watershed's seed distance)")
    starts = np.cumsum([0] + [len(group) for group in groups])
    blockwise.compute([functools.partial(blockwise.offset_slabs, labels, group,
                                         [int(o) for o in offsets[start:start + len(group)]])
                       for group, start in zip(groups, starts) if offsets[start + len(group) - 1]],
                      scheduler=scheduler)
    n = int(offsets[-1])
    writer.attrs.update({"n_supervoxels": n, "supervoxels_made": "watershed",
                         "supervoxels_per_section": bool(sections)})
    return n


def _write_graph(writer, *, threshold: float, mapping: np.ndarray | None, progress: ProgressFactory | None,
                 fold_voxels: int = 0, scheduler: str | None = None) -> dict:
    """RAG, supervoxel sizes and initial mapping (and the truth table with ground truth) as side arrays; the
    RAG block by block as tasks of dask's ``scheduler`` (:func:`game.segmentation.rag.build_rag_blockwise`).

    Without a ``mapping`` the initial segmentation is mean agglomeration up to
    ``threshold``, with fragments under ``fold_voxels`` folded into a neighbour.
    Supervoxels made section by section link by
    :func:`game.segmentation.merging.section_linkage`.
    """
    shape, chunks = writer.shape, writer.chunks
    n = int(writer.attrs.get("n_supervoxels") or 0)
    rag = build_rag_blockwise(blockwise.layer(writer, "supervoxels"), blockwise.layer(writer, "boundary"),
                              shape, chunks, n_supervoxels=n, progress=_bar(progress, "region graph"),
                              scheduler=scheduler)
    sizes = writer.label_sizes("supervoxels", minlength=n + 1)
    sizes[0] = 0
    if writer.attrs.get("supervoxels_per_section"):
        rag = rag.with_linkage(section_linkage(rag, sizes))
    writer.save_side("rag", rag.to_arrays())
    writer.save_side("sv_sizes", sizes)
    if mapping is None:
        mapping = fold_fragments(rag, agglomerate(rag, threshold), sizes, max_voxels=fold_voxels)
    writer.save_side("mapping", mapping)
    info = {"supervoxels": n, "edges": int(len(rag.u)), "segments": int(len(np.unique(mapping[1:])))}
    if writer.has("groundtruth"):
        writer.save_side("sv_gt_table", dataclasses.asdict(_truth_table(writer, progress)))
    return info


def _truth_table(volume, progress: ProgressFactory | None) -> metrics.ContingencyTable:
    """Ground truth × supervoxels, counted once: every later evaluation is a relabelling of it.

    Ground truth drawn per section is counted with each section's labels its
    own (:func:`game.evaluation.quality.section_labels`).
    """
    acc = metrics.ContingencyAccumulator(ignore_labels=(0,))
    tiles = list(BBox.from_shape(volume.shape).tiles(volume.chunks))
    bar = _bar(progress, "truth table")
    per_section = (volume.attrs.get("truth") or {}).get("kind") == "2d"
    for i, box in enumerate(tiles, 1):
        truth = volume.read("groundtruth", box)
        acc.add(quality.section_labels(truth, box.start[0]) if per_section else truth,
                volume.read("supervoxels", box))
        bar(i, len(tiles))
    return acc.table()


def _store_supervoxels(writer, supervoxels: np.ndarray, made: str) -> int:
    """Supervoxels given whole (imported, or made inside imported segments), renumbered densely."""
    supervoxels, remap = fastremap.renumber(np.asarray(supervoxels), preserve_zero=True, in_place=False)
    n = int(supervoxels.max(initial=0))
    writer.write("supervoxels", None, supervoxels.astype(np.uint32 if n < 2**32 else np.uint64))
    boxes = writer.label_boxes("supervoxels")[1:]
    present = boxes[:, 0] >= 0
    one_section = bool(n) and bool((boxes[present, 3] - boxes[present, 0] == 1).all())
    writer.attrs.update({"n_supervoxels": n, "supervoxels_made": made, "supervoxels_per_section": one_section})
    return n


# ----------------------------------------------------------------------------- demo

def make_demo(inst: Instance, name: str, *, shape=(64, 256, 256), seed: int = 0, overwrite: bool = False,
              progress: ProgressFactory | None = None, scheduler: str | None = None) -> dict:
    """Generate the demo volume with exact ground truth and an automatic segmentation with errors (the
    blockwise stages on dask's ``scheduler``: see :mod:`game.blockwise`)."""
    started = time.perf_counter()
    spec = synthetic.DemoSpec(shape=tuple(shape), seed=seed)
    with _replacing(inst, name, overwrite):
        with inst.volumes.create(name, shape=spec.shape, resolution=spec.resolution,
                                 overwrite=overwrite) as w:
            blocks = list(BBox.from_shape(spec.shape).tiles(w.chunks))
            bar = _bar(progress, "demo volume")
            for i, box in enumerate(blocks, 1):
                image, truth = synthetic.generate_block(spec, box)
                w.write("image", box, image)
                w.write("groundtruth", box, truth)
                bar(i, len(blocks))
            _boundary(inst, w, progress, scheduler)
            w.attrs.update({"source": "generated demo", "seed": seed})
            n = _watershed_into(w, w, spec.resolution, progress=progress, scheduler=scheduler,
                                sections=per_section(spec.resolution, inst.settings["ANISOTROPY_RATIO"],
                                                     inst.settings["DEMO_ANISOTROPIC"]))
            info = _write_graph(w, threshold=inst.settings["AGGLOMERATION_THRESHOLD"], mapping=None,
                                progress=progress, fold_voxels=inst.settings["FOLD_MAX_VOXELS"], scheduler=scheduler)
    info.update({"name": name, "shape": list(spec.shape), "supervoxels": n,
                 "seconds": round(time.perf_counter() - started, 1)})
    return info


def _boundary(inst: Instance, volume, progress: ProgressFactory | None, scheduler: str | None = None) -> None:
    """The demo's boundary map, written into ``volume``: the classical filter by default, so the game has
    errors to fix; block by block as tasks of dask (the intensity levels from the blocks' histograms).

    With ``DEMO_BOUNDARY=network`` the shipped boundary network is used instead;
    its segmentation leaves far fewer errors (see models/boundary_unet.md).
    """
    if inst.settings["DEMO_BOUNDARY"] == "network":
        from game.app.settings import resolve_model_path
        _predict_into(volume, volume, str(resolve_model_path(inst.settings["BOUNDARY_MODEL"])), progress, scheduler)
        return
    image, boundary = blockwise.array_url(volume, "image"), blockwise.array_url(volume, "boundary")
    volume.create_layer("boundary", np.uint8)
    blocks = list(BBox.from_shape(volume.shape).tiles(_filter_block(volume)))
    histograms = blockwise.compute([functools.partial(blockwise.image_histogram, image, box) for box in blocks],
                                   scheduler=scheduler)
    levels = filters.intensity_percentiles(np.sum(histograms, axis=0))
    blockwise.compute([functools.partial(blockwise.membrane_block, image, boundary, box, levels) for box in blocks],
                      scheduler=scheduler, progress=_bar(progress, "boundary filter"))


def _filter_block(volume) -> tuple[int, int, int]:
    """Blocks of whole z-chunks and up to 512 × 512 in-plane (chunk-aligned): a few hundred MB to filter."""
    return (volume.chunks[0],) + tuple(max(c, 512 // c * c) for c in volume.chunks[1:])


def _predict_into(source, writer, model_path: str, progress: ProgressFactory | None, scheduler: str | None) -> None:
    """The boundary network's prediction of ``source``'s image into ``writer``'s boundary, block by block as
    tasks of dask."""
    from game.segmentation import boundary as bnd
    if not writer.has("boundary"):
        writer.create_layer("boundary", np.uint8)
    image, boundary = blockwise.array_url(source, "image"), blockwise.array_url(writer, "boundary")
    # whole chunks per task, so that no two tasks write one chunk
    block = tuple(max(b, c) // c * c for b, c in zip(bnd.BLOCK, writer.chunks))
    tiles = list(BBox.from_shape(source.shape).tiles(block))
    blockwise.compute([functools.partial(blockwise.boundary_block, image, boundary, tile, bnd.OVERLAP, model_path)
                       for tile in tiles], scheduler=scheduler,
                      progress=_bar(progress, f"boundary network ({bnd.default_device()})"))


# ----------------------------------------------------------------------------- import

def _open_source(spec: str | None, what: str):
    if not spec:
        return None
    source = open_array(spec)
    if source.ndim != 3:
        raise ProofQuestError(f"--{what} {spec}: a volume needs 3 axes (z, y, x), got shape {source.shape}")
    return source


def import_volume(inst: Instance, name: str, *, image: str, segmentation: str | None = None,
                  supervoxels: str | None = None, boundary: str | None = None, groundtruth: str | None = None,
                  resolution=None, invert_boundary: bool = False, groundtruth_kind: str = "auto",
                  overwrite: bool = False, progress: ProgressFactory | None = None,
                  scheduler: str | None = None) -> dict:
    """Import a real volume; see the README for which layers lead to which segmentation (its region graph
    block by block as tasks of dask's ``scheduler``).

    With ``segmentation`` that is the initial segmentation (supervoxels made
    inside its segments unless given); with ``supervoxels`` alone each is its
    own segment until :func:`agglomerate_volume`; with only an image and a
    boundary map, :func:`agglomerate_volume` makes supervoxels first.

    The image and the boundary map are scaled to uint8 from their type and
    whole range (:mod:`game.volumes.intensity`); ``groundtruth`` is declared
    for what it is (:func:`declare_truth`): neuron labels in 3D or per
    section, or a membrane mask (kept as the ``membranes`` layer, a training
    target); tissue classes are refused. ``resolution`` (z, y, x) in nm is
    checked against the image's shape (:func:`game.volumes.volume.check_resolution_order`);
    without it 1 nm is assumed, and the result's ``notes`` say so.
    """
    specs = {"image": image, "segmentation": segmentation, "supervoxels": supervoxels, "boundary": boundary,
             "groundtruth": groundtruth}
    with contextlib.ExitStack() as open_files:
        sources = {}
        for layer, spec in specs.items():
            sources[layer] = _open_source(spec, layer)
            if sources[layer] is not None:
                open_files.enter_context(sources[layer])
        return _import_sources(inst, name, specs, sources, resolution=resolution, invert_boundary=invert_boundary,
                               groundtruth_kind=groundtruth_kind, overwrite=overwrite, progress=progress,
                               scheduler=scheduler)


def check_sources(specs: dict, sources: dict) -> tuple[int, int, int]:
    """The shape all opened layers share; a clear error when one differs or holds non-integer labels."""
    shape = tuple(sources["image"].shape)
    for layer, source in sources.items():
        if source is None:
            continue
        if tuple(source.shape) != shape:
            raise ProofQuestError(f"the {layer} {specs[layer]} has shape {tuple(source.shape)} but the image "
                                  f"{specs['image']} has {shape}: all layers must cover the same voxels")
        # ground truth may be a membrane probability (declare_truth tells)
        if layer in LABEL_LAYERS and layer != "groundtruth" and not np.issubdtype(source.dtype, np.integer):
            raise ProofQuestError(f"the {layer} {specs[layer]} holds {source.dtype} values, but labels must be "
                                  "integers: convert it (e.g. numpy .astype('uint32')) and import again")
    return shape


TRUTH_KINDS = ("auto", "3d", "2d", "membrane")


def declare_truth(source, kind: str = "auto") -> Annotation | None:
    """What the ground truth given to an import is (:func:`game.volumes.annotations.classify_annotation`).

    ``kind`` other than 'auto' declares it instead (labels must then be
    integers). Tissue classes are refused with what to do instead.
    """
    if source is None:
        return None
    if kind not in TRUTH_KINDS:
        raise ProofQuestError(f"--groundtruth-kind {kind!r}: use one of {', '.join(TRUTH_KINDS)}")
    found = classify_annotation(source)
    if kind != "auto":
        if kind in ("3d", "2d") and not np.issubdtype(source.dtype, np.integer):
            raise ProofQuestError(f"--groundtruth-kind {kind} needs integer labels, but the file holds "
                                  f"{source.dtype} values (a membrane probability?)")
        return Annotation(kind, f"declared {kind} by the importer (found: {found.kind}, {found.reason})",
                          found.reused)
    if found.kind == "tissue":
        raise ProofQuestError(f"the ground truth looks like tissue classes, not neurons: {found.reason}. "
                              "ProofQuest needs one id per neuron (3D or per section) or a membrane mask: export "
                              "the membrane class as a 0/1 mask and pass that, or leave --groundtruth out "
                              "(--groundtruth-kind says what a file is when the guess is wrong)")
    return found


def _import_sources(inst, name, specs, sources, *, resolution, invert_boundary, groundtruth_kind, overwrite,
                    progress, scheduler=None) -> dict:
    shape = check_sources(specs, sources)
    notes = []
    if resolution is None:
        resolution = (1.0, 1.0, 1.0)
        notes.append("no --resolution given: 1 nm voxels assumed; serial sections need their real voxel size "
                     "(Z,Y,X in nm) for the anisotropic path and the puzzles' sizes")
    resolution = check_resolution_order(check_resolution(resolution), shape)
    truth = declare_truth(sources["groundtruth"], groundtruth_kind)
    started = time.perf_counter()
    with _replacing(inst, name, overwrite):
        with inst.volumes.create(name, shape=shape, resolution=resolution, overwrite=overwrite) as w:
            convert, scaling = uint8_converter(sources["image"], "image", progress=_bar(progress, "image range"))
            copy_into(w, "image", sources["image"], convert=convert, progress=_bar(progress, "image"))
            scalings = {"image": scaling.to_dict()}
            if sources["boundary"] is not None:
                convert, scaling = uint8_converter(sources["boundary"], "boundary", invert=invert_boundary,
                                                   progress=_bar(progress, "boundary range"))
                copy_into(w, "boundary", sources["boundary"], convert=convert, progress=_bar(progress, "boundary"))
                scalings["boundary"] = {**scaling.to_dict(), "inverted": bool(invert_boundary)}
            if truth is not None and truth.kind == "membrane":
                convert, scaling = uint8_converter(sources["groundtruth"], "membranes",
                                                   progress=_bar(progress, "membrane mask range"))
                copy_into(w, "membranes", sources["groundtruth"], convert=convert,
                          progress=_bar(progress, "membrane mask"))
                scalings["membranes"] = scaling.to_dict()
            elif truth is not None:
                copy_into(w, "groundtruth", sources["groundtruth"], progress=_bar(progress, "ground truth"))
            w.attrs.update({"source": {k: v for k, v in specs.items() if v}, "scaling": scalings})
            if truth is not None:
                w.attrs["truth"] = truth.to_dict()
            info = {"name": name, "shape": list(shape), "resolution": list(resolution),
                    "truth": None if truth is None else truth.to_dict(), "scaling": scalings}
            if sources["supervoxels"] is not None or sources["segmentation"] is not None:
                if not w.has("boundary"):
                    w.write("boundary", None, np.round(filters.membrane_probability(w.read("image")) * 255)
                            .astype(np.uint8))
                mapping = None
                if sources["supervoxels"] is not None:
                    n = _store_supervoxels(w, np.asarray(sources["supervoxels"][:]), "imported")
                    if sources["segmentation"] is not None:
                        mapping = _majority_mapping(w.read("supervoxels"), np.asarray(sources["segmentation"][:]))
                    else:
                        mapping = np.arange(n + 1, dtype=np.uint64)
                else:
                    svs, seg_mapping = oversegment_segments(np.asarray(sources["segmentation"][:]),
                                                            w.read("boundary"))
                    n = _store_supervoxels(w, svs, "inside imported segments")
                    mapping = seg_mapping  # oversegment_segments gives dense ids already
                info.update(_write_graph(w, threshold=inst.settings["AGGLOMERATION_THRESHOLD"], mapping=mapping,
                                         progress=progress, scheduler=scheduler))
    info["seconds"] = round(time.perf_counter() - started, 1)
    if notes:
        info["notes"] = notes
    return info


def _majority_mapping(supervoxels: np.ndarray, segmentation: np.ndarray) -> np.ndarray:
    """Each supervoxel to the imported segment covering most of it."""
    table = metrics.contingency_table(segmentation, supervoxels, ignore_labels=())
    truth = metrics.supervoxel_truth(table=table)
    return truth.astype(np.uint64)


# ----------------------------------------------------------------------------- agglomeration

@contextmanager
def _replacing(inst: Instance, name: str, overwrite: bool) -> Iterator[None]:
    """Around a step that replaces a volume: its old edit log and cached segmentation go with it."""
    if inst.volumes.exists(name) and not overwrite:
        raise ProofQuestError(f"a volume named {name!r} exists; pass --force to replace it, or choose a new name")
    yield
    st.clear_edits(inst.store, name)
    inst.forget_volume(name)


@contextmanager
def rewriting(inst: Instance, name: str, *, keep_layers, discard_edits: bool):
    """Rebuild a volume from the old one (which stays readable) and swap it in atomically."""
    old = inst.volumes.open(name)
    edits = st.edit_count(inst.store, name)
    if edits and not discard_edits:
        raise ProofQuestError(f"volume {name!r} has {edits} edits that a new segmentation would make "
                              "meaningless; pass --discard-edits to drop them (export them first)")
    with _replacing(inst, name, overwrite=True):
        with inst.volumes.create(name, shape=old.shape, resolution=old.resolution, chunks=old.chunks,
                                 overwrite=True) as w:
            for layer in keep_layers:
                if old.has(layer):
                    copy_into(w, layer, _LayerSource(old, layer))
            w.attrs.update(old.attrs)
            yield old, w


class _LayerSource:
    """A stored layer as a lazy source for ``copy_into``."""

    def __init__(self, volume: Volume, layer: str):
        self.volume, self.layer = volume, layer
        self.shape, self.dtype, self.ndim = volume.shape, volume.dtype(layer), 3

    def __getitem__(self, key):
        z = key[0] if isinstance(key, tuple) else key
        start, stop = z.start or 0, z.stop if z.stop is not None else self.shape[0]
        return self.volume.read(self.layer, BBox((start, 0, 0), (stop,) + tuple(self.shape[1:])))


def agglomerate_volume(inst: Instance, name: str, *, threshold: float | None = None, discard_edits: bool = False,
                       anisotropic: str = "auto", progress: ProgressFactory | None = None,
                       scheduler: str | None = None) -> dict:
    """Make supervoxels if there are none, then the initial segmentation by mean agglomeration (the
    watershed and the region graph block by block as tasks of dask's ``scheduler``).

    ``anisotropic`` ('auto', 'on', 'off') chooses between supervoxels made
    section by section and a 3D watershed (:func:`per_section`); supervoxels
    a watershed made the other way are made again, imported ones are kept.
    """
    threshold = inst.settings["AGGLOMERATION_THRESHOLD"] if threshold is None else threshold
    if not 0.0 <= threshold <= 1.0:
        raise ProofQuestError(f"--threshold {threshold} is outside 0..1 (a boundary probability)")
    volume = inst.volumes.open(name)
    if not volume.has("supervoxels") and not volume.has("boundary"):
        raise ProofQuestError(f"volume {name!r} has neither supervoxels nor a boundary map; import one with "
                              "--boundary or --supervoxels, or run `segment` to predict boundaries")
    sections = per_section(volume.resolution, inst.settings["ANISOTROPY_RATIO"], anisotropic)
    remake = volume.has("boundary") and (not volume.has("supervoxels") or (
        volume.attrs.get("supervoxels_made") == "watershed"
        and bool(volume.attrs.get("supervoxels_per_section")) != sections))
    keep = [layer for layer in ("image", "groundtruth", "boundary", "supervoxels")
            if volume.has(layer) and not (layer == "supervoxels" and remake)]
    with rewriting(inst, name, keep_layers=keep, discard_edits=discard_edits) as (old, w):
        if remake:
            _watershed_into(old, w, old.resolution, sections=sections, progress=progress, scheduler=scheduler)
        else:
            w.attrs["n_supervoxels"] = int(old.attrs.get("n_supervoxels") or _max_label(old, "supervoxels"))
        info = _write_graph(w, threshold=threshold, mapping=None, progress=progress,
                            fold_voxels=inst.settings["FOLD_MAX_VOXELS"], scheduler=scheduler)
    info.update({"name": name, "threshold": threshold,
                 "supervoxels_per_section": bool(inst.volumes.open(name).attrs.get("supervoxels_per_section"))})
    return info


def segment_volume(inst: Instance, name: str, *, model: str | None = None, threshold: float | None = None,
                   discard_edits: bool = False, anisotropic: str = "auto",
                   progress: ProgressFactory | None = None, scheduler: str | None = None) -> dict:
    """Boundary network → watershed supervoxels → agglomeration, as the volume's segmentation; the network,
    the watershed and the region graph block by block as tasks of dask's ``scheduler`` (:mod:`game.blockwise`).

    The network is anisotropic by design (in-plane pooling, context of a few
    sections: :mod:`game.segmentation.unet`); the watershed goes section by
    section or in 3D as ``anisotropic`` says (:func:`per_section`).
    """
    from game.app.settings import resolve_model_path

    threshold = inst.settings["AGGLOMERATION_THRESHOLD"] if threshold is None else threshold
    model_path = resolve_model_path(model or inst.settings["BOUNDARY_MODEL"])
    if not model_path.is_file():
        raise ProofQuestError(f"no boundary network at {model_path}; pass --model with a file of weights")
    started = time.perf_counter()
    keep = [layer for layer in ("image", "groundtruth") if inst.volumes.open(name).has(layer)]
    with rewriting(inst, name, keep_layers=keep, discard_edits=discard_edits) as (old, w):
        _predict_into(old, w, str(model_path), progress, scheduler)
        _watershed_into(w, w, old.resolution, progress=progress, scheduler=scheduler,
                        sections=per_section(old.resolution, inst.settings["ANISOTROPY_RATIO"], anisotropic))
        info = _write_graph(w, threshold=threshold, mapping=None, progress=progress,
                            fold_voxels=inst.settings["FOLD_MAX_VOXELS"], scheduler=scheduler)
    info.update({"name": name, "threshold": threshold, "seconds": round(time.perf_counter() - started, 1)})
    return info


def _max_label(volume, layer: str) -> int:
    return max(int(volume.read(layer, box).max(initial=0))
               for box in BBox.from_shape(volume.shape).tiles(volume.chunks))


# ----------------------------------------------------------------------------- evaluation

def no_segmentation(volume) -> ProofQuestError:
    """The error for a volume without a segmentation, naming the command that makes one from what it has."""
    if volume.has("supervoxels") or volume.has("boundary"):
        how = f"run `agglomerate {volume.name}` first"
    else:
        how = f"it has only an image: run `segment {volume.name}` (the boundary network, then agglomeration) first"
    return ProofQuestError(f"volume {volume.name!r} has no segmentation yet; {how}")


def evaluate_volume(inst: Instance, name: str, *, progress: ProgressFactory | None = None) -> dict:
    """Quality of a volume's current segmentation (initial mapping + edit log) against ground truth."""
    volume = inst.volumes.open(name)
    if not volume.has_side("mapping"):
        raise no_segmentation(volume)
    return quality.evaluate_mapping(quality.truth_table(volume), inst.agglomeration(name).mapping,
                                    RAG.from_arrays(volume.load_side("rag")))


def quality_gap(inst: Instance, name: str) -> dict:
    """The initial and current segmentation beside the supervoxel limit, and the share of the true gap closed.

    The *supervoxel limit* (every supervoxel to its majority ground-truth
    object) is the best any merge or split of supervoxels can reach; the gap
    from the initial segmentation to it is what proofreading can close.
    """
    volume = inst.volumes.open(name)
    table, rag = quality.truth_table(volume), RAG.from_arrays(volume.load_side("rag"))
    initial = quality.evaluate_mapping(table, volume.load_side("mapping"), rag)
    current = quality.evaluate_mapping(table, inst.agglomeration(name).mapping, rag)
    limit = quality.supervoxel_limit(table, rag)
    return {"initial": initial, "current": current, "limit": limit,
            "gap_closed": quality.gap_closed(initial, current, limit)}


def list_volumes(inst: Instance) -> list[dict]:
    rows = []
    for name in inst.volumes.names():
        v = inst.volumes.open(name)
        rows.append({"name": name, "shape": list(v.shape), "resolution": list(v.resolution),
                     "layers": list(v.layers), "edits": st.edit_count(inst.store, name)})
    return rows
