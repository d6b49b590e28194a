"""Neuroglancer, offline: its built client from the installed package, the volumes as precomputed data.

The ``neuroglancer`` package on PyPI ships the viewer's compiled client
(``neuroglancer/static/client``: JavaScript, CSS, WebAssembly; about 5 MB),
built for its Python server. ProofQuest serves those files as they are and
never imports the package; the viewer state travels in the URL. Its data
come from this module in Neuroglancer's *precomputed* format [1]_, one chunk
per request: the EM image, the supervoxels, the truth, and the segmentation
after any number of edits, computed chunk by chunk as ``mapping[supervoxels]``
(never stored), with legacy meshes [2]_ of the segments asked for, made on
request by marching cubes [3]_ inside the segment's bounding box.

References
----------
.. [1] Neuroglancer precomputed volume format,
       github.com/google/neuroglancer/blob/master/src/datasource/precomputed/volume.md
.. [2] Neuroglancer precomputed legacy single-resolution mesh format,
       github.com/google/neuroglancer/blob/master/src/datasource/precomputed/meshes.md
.. [3] Lewiner T, Lopes H, Vieira AW, Tavares G (2003) Efficient implementation of
       marching cubes' cases with topological guarantees. J Graphics Tools 8(2):1-15.
"""

from __future__ import annotations

import importlib.util
import json
import re
import threading
import urllib.parse
from collections import OrderedDict
from pathlib import Path

import numpy as np

from game.app import exports
from game.app import store as st
from game.app.instance import Instance
from game.errors import ProofQuestError
from game.geometry import BBox

IMAGE_LAYERS = {"image": "image", "truth": "groundtruth", "supervoxels": "supervoxels"}
ADMIN_ONLY = ("truth",)  # the truth of every puzzle, gold ones included
SEGMENTATION = re.compile(r"segmentation-(\d+)\Z")
CHUNK_KEY = re.compile(r"(\d+)-(\d+)_(\d+)-(\d+)_(\d+)-(\d+)\Z")
CLIENT_FILE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_\-.]*\.(?:js|css|wasm|html)\Z")
SCALE_KEY = "full"
VIEW_TOKEN = "proofquest"
MESH_MAX_VOXELS = 2**24  # a segment's box larger than this is meshed at a coarser step
_MAPPINGS = 8  # replayed mappings kept (several viewers often show the same few states)


# ----------------------------------------------------------------------------- the client

def client_folder() -> Path | None:
    """Where the installed ``neuroglancer`` package keeps its built client, or None if it is not installed."""
    spec = importlib.util.find_spec("neuroglancer")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static" / "client"
    return folder if (folder / "index.html").is_file() else None


def client_assets(folder: Path) -> dict[str, list[str]]:
    """The scripts and style sheets the client's own ``index.html`` loads, in order."""
    index = (folder / "index.html").read_text()
    return {"scripts": re.findall(r'<script[^>]*\ssrc="([^"]+)"', index),
            "styles": re.findall(r'<link[^>]*\shref="([^"]+\.css)"', index)}


def client_file(folder: Path, name: str) -> Path:
    """A file of the client by its bare name (nothing else of the disk is reachable)."""
    if not CLIENT_FILE.match(name) or not (folder / name).is_file():
        raise ProofQuestError(f"the Neuroglancer client has no file {name!r}")
    return folder / name


# ----------------------------------------------------------------------------- layers and access

def parse_layer(layer: str) -> tuple[str, int | None]:
    """``image``, ``truth``, ``supervoxels`` or ``segmentation-N`` (after N edits) → (kind, N)."""
    if layer in IMAGE_LAYERS:
        return layer, None
    match = SEGMENTATION.match(layer)
    if match is None:
        raise ProofQuestError(f"no layer {layer!r}: use image, truth, supervoxels or segmentation-N")
    return "segmentation", int(match.group(1))


# The segmentation players may see: the automatic one, before any edit. Every later one holds the answers of
# secret gold puzzles (their edits are applied once known, game.crowd.votes.apply_known_answers, and a settled
# decision copied as gold was the crowd's edit): a guest who voted on a gold puzzle read its answer off the
# segments its view selected, and any player could read it at a gold puzzle's place in the live segmentation.
PLAYERS_SEGMENTATION = 0


def may_read(role: str, layer: str) -> bool:
    """Players see the image, the supervoxels and the automatic segmentation (``segmentation-0``); the truth
    and the edited segmentations (gold answers among them) are for admins."""
    if role == "admin":
        return True
    kind, at = parse_layer(layer)
    return kind not in ADMIN_ONLY and (kind != "segmentation" or at == PLAYERS_SEGMENTATION)


class ViewerCache:
    """What viewers ask for again and again: the mappings after N edits lately shown (replayed once each)
    and the label bounding boxes that meshes start from (found once per volume, kept beside it)."""

    def __init__(self):
        self._mappings: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._boxes: dict[tuple, np.ndarray] = {}
        self._lock = threading.Lock()

    def mapping(self, inst: Instance, volume, at: int) -> np.ndarray:
        key = (volume.name, volume.created, at)  # a replaced volume has another creation time
        with self._lock:
            if key in self._mappings:
                self._mappings.move_to_end(key)
                return self._mappings[key]
        mapping, _ = exports.mapping_at(inst, volume.name, at)
        with self._lock:
            self._mappings[key] = mapping
            while len(self._mappings) > _MAPPINGS:
                self._mappings.popitem(last=False)
        return mapping

    def boxes(self, volume, layer: str) -> np.ndarray:
        key = (volume.name, volume.created, layer)
        if key not in self._boxes:
            side = f"boxes-{layer}"
            if volume.has_side(side):
                boxes = volume.load_side(side)
            else:
                boxes = volume.label_boxes(layer)
                volume.save_side(side, boxes)
            with self._lock:
                self._boxes[key] = boxes
        return self._boxes[key]


def _volume(inst: Instance, name: str, kind: str):
    volume = inst.volumes.open(name)
    layer = "supervoxels" if kind == "segmentation" else IMAGE_LAYERS[kind]
    if not volume.has(layer) or (kind == "segmentation" and not volume.has_side("mapping")):
        raise ProofQuestError(f"volume {name!r} has no {kind} to show")
    return volume


def _data_type(inst: Instance, cache: ViewerCache, kind: str, at: int | None, volume) -> np.dtype:
    if kind == "segmentation":
        return exports.label_dtype(cache.mapping(inst, volume, at))
    return np.dtype(volume.dtype(IMAGE_LAYERS[kind])).newbyteorder("<")


def info(inst: Instance, cache: ViewerCache, name: str, layer: str) -> dict:
    """The precomputed ``info`` of one layer: one scale, the volume's own chunks, raw little-endian chunks."""
    kind, at = parse_layer(layer)
    volume = _volume(inst, name, kind)
    z, y, x = volume.shape
    cz, cy, cx = (min(c, n) for c, n in zip(volume.chunks, volume.shape))
    data = {"@type": "neuroglancer_multiscale_volume", "type": "image" if kind == "image" else "segmentation",
            "data_type": _data_type(inst, cache, kind, at, volume).name, "num_channels": 1,
            "scales": [{"key": SCALE_KEY, "size": [x, y, z], "resolution": list(volume.resolution[::-1]),
                        "voxel_offset": [0, 0, 0], "chunk_sizes": [[cx, cy, cz]], "encoding": "raw"}]}
    if kind != "image":
        data["mesh"] = "mesh"
    return data


def chunk_box(volume, key: str) -> BBox:
    """The box of a chunk key ``x0-x1_y0-y1_z0-z1``, which must be one chunk of the volume's grid."""
    match = CHUNK_KEY.match(key)
    if match is None:
        raise ProofQuestError(f"{key!r} is not a chunk key (x0-x1_y0-y1_z0-z1)")
    x0, x1, y0, y1, z0, z1 = map(int, match.groups())
    box = BBox((z0, y0, x0), (z1, y1, x1))
    chunks = tuple(min(c, n) for c, n in zip(volume.chunks, volume.shape))
    expected = BBox(box.start, tuple(min(s + c, n) for s, c, n in zip(box.start, chunks, volume.shape)))
    if any(s % c for s, c in zip(box.start, chunks)) or box != expected:
        raise ProofQuestError(f"{key} is not a chunk of volume {volume.name!r} (chunks of {chunks[::-1]} x,y,z)")
    return box


def chunk(inst: Instance, cache: ViewerCache, name: str, layer: str, key: str) -> bytes:
    """One chunk, raw encoding: little-endian values, x fastest (the bytes of a C-order z,y,x block)."""
    kind, at = parse_layer(layer)
    volume = _volume(inst, name, kind)
    box = chunk_box(volume, key)
    if kind == "segmentation":
        mapping = cache.mapping(inst, volume, at)
        block = np.take(mapping, volume.read("supervoxels", box)).astype(exports.label_dtype(mapping), copy=False)
    else:
        block = volume.read(IMAGE_LAYERS[kind], box)
        block = block.astype(block.dtype.newbyteorder("<"), copy=False)
    return np.ascontiguousarray(block).tobytes()


# ----------------------------------------------------------------------------- meshes of the segments shown

def mesh_manifest(segment: int) -> dict:
    return {"fragments": [f"{segment}:0:whole"]}


def _segment_mask(inst: Instance, cache: ViewerCache, name: str, kind: str, at: int | None, segment: int):
    """The voxels of one segment (or truth object) inside its bounding box, at a step that bounds the work."""
    volume = _volume(inst, name, kind)
    if kind == "segmentation":
        mapping = cache.mapping(inst, volume, at)
        members = np.flatnonzero(mapping == segment)
        layer, wanted = "supervoxels", members
    else:
        layer, wanted = IMAGE_LAYERS[kind], np.array([segment])
    if not len(wanted) or segment == 0:
        return None, None, None
    boxes = cache.boxes(volume, layer)
    present = wanted[wanted < len(boxes)]
    present = present[boxes[present, 0] >= 0]  # ids that occur in the volume
    if not len(present):
        return None, None, None
    start, stop = boxes[present, :3].min(axis=0), boxes[present, 3:].max(axis=0)
    box = BBox(tuple(int(s) for s in start), tuple(int(s) for s in stop)).expand((1, 1, 1)).clip(volume.shape)
    step = max(1, int(np.ceil((box.size / MESH_MAX_VOXELS) ** (1 / 3))))
    labels = volume.read(layer, box)[::step, ::step, ::step]
    return np.isin(labels, wanted), box, step


def mesh_fragment(inst: Instance, cache: ViewerCache, name: str, layer: str, segment: int) -> bytes:
    """A legacy precomputed mesh of one segment: uint32 vertex count, float32 x,y,z (nm), uint32 triangles."""
    from skimage.measure import marching_cubes

    kind, at = parse_layer(layer)
    if kind == "image":
        raise ProofQuestError("the image layer has no meshes")
    mask, box, step = _segment_mask(inst, cache, name, kind, at, int(segment))
    if mask is None or not mask.any():
        return np.uint32(0).tobytes()
    padded = np.pad(mask, 1)  # closed surfaces where the segment meets its box
    volume = inst.volumes.open(name)
    spacing = tuple(r * step for r in volume.resolution)
    vertices, faces, _, _ = marching_cubes(padded.astype(np.float32), 0.5, spacing=spacing)
    vertices += (np.array(box.start) - step) * np.array(volume.resolution)  # back to volume coordinates
    xyz = vertices[:, ::-1].astype("<f4")
    return np.uint32(len(xyz)).tobytes() + xyz.tobytes() + faces.astype("<u4").tobytes()


# ----------------------------------------------------------------------------- viewer state and links

def _source(root: str, name: str, layer: str) -> str:
    return f"precomputed://{root.rstrip('/')}/neuroglancer/data/{urllib.parse.quote(name)}/{layer}"


def viewer_state(root: str, volume, layers: list[dict], *, position=None, title: str = "") -> dict:
    """A Neuroglancer state: the volume's axes in metres, the given layers, the position (z, y, x voxels).

    Each layer is ``{name, layer, segments?, visible?}`` with ``layer`` as in :func:`parse_layer`.
    """
    z, y, x = (np.array(volume.shape) // 2) if position is None else position
    resolution = volume.resolution
    state = {"dimensions": {axis: [resolution[i] * 1e-9, "m"] for axis, i in (("x", 2), ("y", 1), ("z", 0))},
             "position": [float(x) + 0.5, float(y) + 0.5, float(z) + 0.5], "crossSectionScale": 0.5,
             "projectionScale": float(max(volume.shape[1:]) * 2), "layout": "4panel", "title": title,
             "layers": []}
    for spec in layers:
        kind, _ = parse_layer(spec["layer"])
        entry = {"type": "image" if kind == "image" else "segmentation", "name": spec["name"],
                 "source": _source(root, volume.name, spec["layer"])}
        if kind != "image":
            entry["segments"] = [str(int(s)) for s in spec.get("segments", ())]
            entry["selectedAlpha"] = 0.35
        if spec.get("visible") is False:
            entry["visible"] = False
        state["layers"].append(entry)
    return state


def viewer_url(root: str, state: dict) -> str:
    """The viewer page with ``state`` in its fragment, as Neuroglancer reads it (``#!`` + JSON)."""
    return f"{root.rstrip('/')}/neuroglancer/v/{VIEW_TOKEN}/#!" + urllib.parse.quote(
        json.dumps(state, separators=(",", ":")), safe="")


def puzzle_view(inst: Instance, root: str, puzzle: dict, *, role: str, cache: ViewerCache) -> dict:
    """A puzzle in Neuroglancer: image, a segmentation with the puzzle's segments selected (and the truth for
    admins). For admins the segmentation now; for players the automatic one (:data:`PLAYERS_SEGMENTATION`),
    whatever the puzzle's role, so that the view tells neither a gold puzzle's answer nor that it is gold."""
    volume = inst.volumes.open(puzzle["volume"])
    agg = inst.agglomeration(puzzle["volume"])
    if role == "admin":
        at, segment_of = len(agg.edits), agg.segment_of
    else:
        shown = cache.mapping(inst, volume, PLAYERS_SEGMENTATION)  # the one its data routes serve (cached)
        at, segment_of = PLAYERS_SEGMENTATION, lambda sv: int(shown[sv])
    parts = puzzle["anchors"] if puzzle["kind"] == "merge" else puzzle["supervoxels"][:1] + puzzle["anchors"][:1]
    segments = sorted({segment_of(int(sv)) for sv in parts if 0 < int(sv) <= agg.n_supervoxels})
    layers = [{"name": "EM", "layer": "image"},
              {"name": "segmentation", "layer": f"segmentation-{at}", "segments": segments}]
    if role == "admin" and volume.has("groundtruth"):
        layers.insert(1, {"name": "truth", "layer": "truth", "visible": False})
    return viewer_state(root, volume, layers, position=puzzle["location"],
                        title=f"puzzle {puzzle['id']} · {puzzle['kind']} · {puzzle['volume']}")


def edit_view(inst: Instance, root: str, name: str, seq: int) -> dict:
    """An edit of the log: the segmentation before and after it, the moved part and its two segments selected."""
    rows = st.edit_log(inst.store, name)
    if not 0 <= seq < len(rows):
        raise ProofQuestError(f"edit #{seq} is not in the log of {name!r} ({len(rows)} edits)")
    row, volume = rows[seq], inst.volumes.open(name)
    segments = sorted({int(row["source"]), int(row["target"])})
    layers = [{"name": "EM", "layer": "image"},
              {"name": f"before #{seq}", "layer": f"segmentation-{seq}", "segments": segments, "visible": False},
              {"name": f"after #{seq}", "layer": f"segmentation-{seq + 1}", "segments": segments}]
    if volume.has("groundtruth"):
        layers.insert(1, {"name": "truth", "layer": "truth", "visible": False})
    return viewer_state(root, volume, layers, position=row["location"],
                        title=f"edit #{seq} · {row['kind']} · {name}")
